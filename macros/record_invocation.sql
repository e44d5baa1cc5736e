{#-
  record_invocation(results, schema=none): an `on-run-end` hook that writes this invocation's results
  into the state schema, so `dbt-activate run --from-warehouse` can decide what to sync where no
  target/run_results.json is at hand (dbt Cloud, a CI job that did not run dbt itself):

    # dbt_project.yml
    on-run-end:
      - "{{ dbt_activate.record_invocation(results) }}"

  Table <state schema>.dbt_invocation_results, one row per node of the invocation (hooks left out):
  invocation_id, command (build, run, test...), run_started_at, generated_at, unique_id, resource_type,
  status (success, error, skipped, pass, fail, warn...), started_at, completed_at, execution_time,
  failures, relation_name (a test's store_failures table), attached_node (a test's model), message.
  The state schema is the CLI's: `schema`, else the env var DBT_ACTIVATE_STATE_SCHEMA, else the var
  `dbt_activate_state_schema`, else <target schema>_activate. Nothing is written at parse time.
-#}
{% macro record_invocation(results, schema=none) %}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set schema = schema or env_var('DBT_ACTIVATE_STATE_SCHEMA', '') or var('dbt_activate_state_schema', '')
                     or target.schema ~ '_activate' -%}
    {%- set relation = api.Relation.create(database=(target.database if target.database is defined else none), schema=schema,
                                           identifier='dbt_invocation_results') -%}
    {%- set rows = [] -%}
    {%- set now = modules.datetime.datetime.now(modules.pytz.utc) -%}
    {%- for result in results if result.node.resource_type != 'operation' -%}
        {%- do rows.append(dbt_activate.activate_invocation_row(result, now)) -%}
    {%- endfor -%}
    {#- on-run-end hooks run outside dbt's transactions (and run_query opens none): open one, commit it. -#}
    {#- One statement per call: not every driver runs several in one execute. -#}
    {%- for ddl in dbt_activate.activate_invocation_ddl(relation) -%}
        {%- call statement('activate_record_invocation', fetch_result=False, auto_begin=True) -%}
            {{ ddl }}
        {%- endcall -%}
    {%- endfor -%}
    {#- A few hundred rows per statement keeps each one well under any warehouse's size limit. -#}
    {%- for chunk in rows | batch(200) -%}
        {%- call statement('activate_record_invocation', fetch_result=False, auto_begin=True) -%}
            insert into {{ relation }} values {{ chunk | join(",\n") }}
        {%- endcall -%}
    {%- endfor -%}
    {%- do adapter.commit() -%}
    {{ return('') }}
{% endmacro %}


{% macro activate_invocation_ddl(relation) %}
    {{ return(adapter.dispatch('activate_invocation_ddl', 'dbt_activate')(relation)) }}
{% endmacro %}


{% macro default__activate_invocation_ddl(relation) %}
    {%- set text = dbt_activate.activate_long_text_type() -%}
    {{ return(["create schema if not exists " ~ adapter.quote(relation.schema),
        "create table if not exists " ~ relation ~ " (invocation_id varchar(64), command varchar(32), "
        ~ "run_started_at timestamp, generated_at timestamp, unique_id varchar(512), resource_type varchar(32), "
        ~ "status varchar(32), started_at timestamp, completed_at timestamp, execution_time "
        ~ dbt_activate.activate_double_type() ~ ", "
        ~ "failures integer, relation_name varchar(1024), attached_node varchar(512), message " ~ text ~ ")"]) }}
{% endmacro %}


{#- Snowflake stores names created unquoted in upper case, and dbt renders the relation unquoted:
    the schema is created the same way, so the CLI finds it as it finds the state schema. -#}
{% macro snowflake__activate_invocation_ddl(relation) %}
    {%- set ddl = dbt_activate.default__activate_invocation_ddl(relation) -%}
    {{ return(["create schema if not exists " ~ relation.include(identifier=false)] + ddl[1:]) }}
{% endmacro %}


{#- GoogleSQL's type names; the dataset in the target's project, as dbt-bigquery renders the relation. -#}
{% macro bigquery__activate_invocation_ddl(relation) %}
    {{ return(["create schema if not exists " ~ relation.include(identifier=false),
        "create table if not exists " ~ relation ~ " (invocation_id string, command string, "
        ~ "run_started_at timestamp, generated_at timestamp, unique_id string, resource_type string, "
        ~ "status string, started_at timestamp, completed_at timestamp, execution_time float64, "
        ~ "failures int64, relation_name string, attached_node string, message string)"]) }}
{% endmacro %}


{% macro activate_long_text_type() %}
    {{ return(adapter.dispatch('activate_long_text_type', 'dbt_activate')()) }}
{% endmacro %}

{% macro default__activate_long_text_type() %}{{ return('varchar') }}{% endmacro %}
{% macro spark__activate_long_text_type() %}{{ return('string') }}{% endmacro %}
{% macro databricks__activate_long_text_type() %}{{ return('string') }}{% endmacro %}

{#- Spark has no `double precision`, BigQuery names it float64. -#}
{% macro activate_double_type() %}
    {{ return(adapter.dispatch('activate_double_type', 'dbt_activate')()) }}
{% endmacro %}

{% macro default__activate_double_type() %}{{ return('double precision') }}{% endmacro %}
{% macro spark__activate_double_type() %}{{ return('double') }}{% endmacro %}
{% macro databricks__activate_double_type() %}{{ return('double') }}{% endmacro %}
{% macro bigquery__activate_double_type() %}{{ return('float64') }}{% endmacro %}
{% macro postgres__activate_long_text_type() %}{{ return('text') }}{% endmacro %}
{#- Redshift's varchar is 256 bytes unless sized; 65535 is its maximum. -#}
{% macro redshift__activate_long_text_type() %}{{ return('varchar(65535)') }}{% endmacro %}


{#- One `(...)` tuple of SQL literals for a result. -#}
{% macro activate_invocation_row(result, now) %}
    {%- set node = result.node -%}
    {%- set execute_timing = (result.timing | selectattr('name', 'equalto', 'execute') | list) -%}
    {%- set started = execute_timing[0].started_at if execute_timing else none -%}
    {%- set completed = execute_timing[0].completed_at if execute_timing else none -%}
    {%- set is_test = node.resource_type in ('test', 'unit_test') -%}
    {%- set values = [
        dbt_activate.activate_literal(invocation_id),
        dbt_activate.activate_literal(flags.WHICH),
        dbt_activate.activate_timestamp(run_started_at),
        dbt_activate.activate_timestamp(now),
        dbt_activate.activate_literal(node.unique_id),
        dbt_activate.activate_literal(node.resource_type),
        dbt_activate.activate_literal(result.status),
        dbt_activate.activate_timestamp(started),
        dbt_activate.activate_timestamp(completed),
        "cast(" ~ (result.execution_time or 0) ~ " as " ~ dbt_activate.activate_double_type() ~ ")",
        "cast(" ~ (result.failures if result.failures is not none else 'null') ~ " as integer)",
        dbt_activate.activate_literal(node.relation_name if is_test else none),
        dbt_activate.activate_literal(node.attached_node if is_test else none),
        dbt_activate.activate_literal((result.message or '')[:4000] if result.message else none),
    ] -%}
    {{ return("(" ~ values | join(", ") ~ ")") }}
{% endmacro %}



{% macro activate_literal(value) %}
    {{ return(adapter.dispatch('activate_literal', 'dbt_activate')(value)) }}
{% endmacro %}

{% macro default__activate_literal(value) %}
    {%- if value is none -%}
        {{ return("cast(null as varchar)") }}
    {%- endif -%}
    {{ return("'" ~ (value | string).replace("'", "''") ~ "'") }}
{% endmacro %}

{#- Spark reads backslash escapes in literals, and 'it''s' as two literals ('it' 's'): escape, never double. -#}
{% macro spark__activate_literal(value) %}
    {%- if value is none -%}
        {{ return("cast(null as string)") }}
    {%- endif -%}
    {{ return("'" ~ (value | string).replace("\\", "\\\\").replace("'", "\\'") ~ "'") }}
{% endmacro %}

{% macro databricks__activate_literal(value) %}{{ return(dbt_activate.spark__activate_literal(value)) }}{% endmacro %}


{#- GoogleSQL escapes with backslashes ('' is not a quote there), as the CLI does (warehouse/bigquery.py). -#}
{% macro bigquery__activate_literal(value) %}
    {%- if value is none -%}
        {{ return("cast(null as string)") }}
    {%- endif -%}
    {%- set text = (value | string).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") -%}
    {{ return("'" ~ text ~ "'") }}
{% endmacro %}


{#- A UTC timestamp without time zone (dbt's timings and run_started_at are UTC). -#}
{% macro activate_timestamp(value) %}
    {%- if value is none -%}
        {{ return("cast(null as timestamp)") }}
    {%- endif -%}
    {{ return("cast('" ~ value.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "' as timestamp)") }}
{% endmacro %}
