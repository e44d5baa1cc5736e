{#-
  The normalised text of one column: the form dbt-activate hashes (fingerprint) and joins (activate_key).
  These rules are shared with the CLI's diff SQL (dbt_activate/warehouse/dialect.py); a change on one
  side must be made on the other, or every row of every sync looks changed.

    boolean                      -> 'true' / 'false'
    timestamp without time zone  -> 'YYYY-MM-DDTHH:MI:SS.ffffff'
    timestamp with time zone     -> converted to UTC first, then the same format
    Redshift SUPER               -> json_serialize(c)
    Snowflake DATE               -> 'YYYY-MM-DD' (cast follows the session's DATE_OUTPUT_FORMAT)
    Snowflake VARIANT/OBJECT/ARRAY -> to_json(c)
    BigQuery TIMESTAMP, DATETIME -> format_timestamp(... cast(c as timestamp), 'UTC'), same format
    BigQuery JSON/STRUCT/ARRAY   -> to_json_string(c); anything else cast(c as string)
    Spark timestamp (LTZ)        -> to UTC first (to_utc_timestamp(c, current_timezone())), as above
    Spark array/map/struct       -> to_json(c)
    anything else                -> cast(c as varchar)
  A null column stays null. Columns are quoted as the relation spells them (found case-insensitively),
  as the CLI does: on Snowflake a quoted name matches only its exact (upper) case.
-#}

{#- Lower-cased column name -> (name as the relation spells it, lower-cased data type) of `relation`;
    {} without one or at parse time. -#}
{% macro activate_columns(relation=none) %}
    {%- set found = {} -%}
    {%- if relation is not none and execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do found.update({column.name | lower: (column.name, column.dtype | lower | trim)}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{% endmacro %}


{#- A column name quoted for SQL. Without a relation to spell it, as given; Snowflake folds a plain
    name to upper case first, as it stores names created unquoted (warehouse/snowflake.py). -#}
{% macro activate_quote_column(name) %}
    {{ return(adapter.dispatch('activate_quote_column', 'dbt_activate')(name)) }}
{% endmacro %}

{% macro default__activate_quote_column(name) %}{{ return(adapter.quote(name)) }}{% endmacro %}

{% macro snowflake__activate_quote_column(name) %}
    {%- if modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', name) -%}
        {{ return(adapter.quote(name | upper)) }}
    {%- endif -%}
    {{ return(adapter.quote(name)) }}
{% endmacro %}


{#- One of 'boolean', 'timestamp', 'timestamptz', 'super', 'text' for a warehouse data type name.
    Any type named timestamp... (DuckDB's TIMESTAMP_NS, Postgres's 'timestamp without time zone') or
    datetime is a timestamp; only the 'with time zone' ones are converted to UTC first. -#}
{% macro activate_type_kind(data_type) %}
    {%- set t = (data_type or '') | lower | trim -%}
    {%- if t in ('boolean', 'bool') -%}
        {{ return('boolean') }}
    {#- Spark's `timestamp` is TIMESTAMP_LTZ (an instant), its `timestamp_ntz` a wall-clock time. -#}
    {%- elif t in ('timestamptz', 'timestamp_tz', 'timestamp_ltz') or t.startswith('timestamp with time zone')
             or (t == 'timestamp' and target.type in ('spark', 'databricks')) -%}
        {{ return('timestamptz') }}
    {%- elif t.startswith('timestamp') or t == 'datetime' -%}
        {{ return('timestamp') }}
    {%- elif t == 'super' -%}
        {{ return('super') }}
    {%- elif t == 'date' -%}
        {{ return('date') }}
    {%- elif t in ('variant', 'object', 'array', 'json', 'record') or t.startswith(('struct<', 'array<', 'map<')) -%}
        {{ return('semi_structured') }}
    {%- endif -%}
    {{ return('text') }}
{% endmacro %}


{#- The quoted column names and their normalised texts, in the order given. -#}
{% macro activate_texts(columns, relation=none) %}
    {%- if columns is string -%}
        {%- set columns = [columns] -%}
    {%- endif -%}
    {%- if columns | length == 0 -%}
        {{ exceptions.raise_compiler_error("dbt_activate: at least one column is needed") }}
    {%- endif -%}
    {%- set found = dbt_activate.activate_columns(relation) -%}
    {%- set texts = [] -%}
    {%- for name in columns -%}
        {%- set column = found.get(name | lower) -%}
        {%- set quoted = adapter.quote(column[0]) if column else dbt_activate.activate_quote_column(name) -%}
        {%- set kind = dbt_activate.activate_type_kind(column[1] if column else '') -%}
        {%- do texts.append(dbt_activate.activate_text(quoted, kind)) -%}
    {%- endfor -%}
    {{ return(texts) }}
{% endmacro %}


{% macro activate_text(column_sql, kind) %}
    {{ return(adapter.dispatch('activate_text', 'dbt_activate')(column_sql, kind)) }}
{% endmacro %}


{#- PostgreSQL's rules, which the CLI also applies to warehouses it has no dialect of its own for. -#}
{% macro default__activate_text(column_sql, kind) %}
    {%- set format = "'YYYY-MM-DD\"T\"HH24:MI:SS.US'" -%}
    {%- if kind == 'boolean' -%}
        {{ return("case when " ~ column_sql ~ " then 'true' when not " ~ column_sql ~ " then 'false' end") }}
    {%- elif kind == 'timestamp' -%}
        {{ return("to_char(" ~ column_sql ~ ", " ~ format ~ ")") }}
    {%- elif kind == 'timestamptz' -%}
        {{ return("to_char(" ~ column_sql ~ " at time zone 'UTC', " ~ format ~ ")") }}
    {%- endif -%}
    {{ return("cast(" ~ column_sql ~ " as varchar)") }}
{% endmacro %}


{% macro duckdb__activate_text(column_sql, kind) %}
    {%- set format = "'%Y-%m-%dT%H:%M:%S.%f'" -%}
    {%- if kind == 'timestamp' -%}
        {{ return("strftime(" ~ column_sql ~ ", " ~ format ~ ")") }}
    {%- elif kind == 'timestamptz' -%}
        {{ return("strftime(timezone('UTC', " ~ column_sql ~ "), " ~ format ~ ")") }}
    {%- endif -%}
    {{ return(dbt_activate.default__activate_text(column_sql, kind)) }}
{% endmacro %}


{% macro postgres__activate_text(column_sql, kind) %}
    {{ return(dbt_activate.default__activate_text(column_sql, kind)) }}
{% endmacro %}


{#- SUPER cannot be cast to varchar (it comes out null); json_serialize gives its JSON text. -#}
{% macro redshift__activate_text(column_sql, kind) %}
    {%- if kind == 'super' -%}
        {{ return("json_serialize(" ~ column_sql ~ ")") }}
    {%- endif -%}
    {{ return(dbt_activate.default__activate_text(column_sql, kind)) }}
{% endmacro %}


{#- TIMESTAMP_TZ/LTZ to UTC, and explicit formats: cast(... as varchar) follows the session's
    TIMESTAMP_OUTPUT_FORMAT and DATE_OUTPUT_FORMAT. -#}
{% macro snowflake__activate_text(column_sql, kind) %}
    {%- set format = "'YYYY-MM-DD\"T\"HH24:MI:SS.FF6'" -%}
    {%- if kind == 'timestamp' -%}
        {{ return("to_char(" ~ column_sql ~ ", " ~ format ~ ")") }}
    {%- elif kind == 'timestamptz' -%}
        {{ return("to_char(convert_timezone('UTC', " ~ column_sql ~ "), " ~ format ~ ")") }}
    {%- elif kind == 'date' -%}
        {{ return("to_char(" ~ column_sql ~ ", 'YYYY-MM-DD')") }}
    {%- elif kind == 'semi_structured' -%}
        {{ return("to_json(" ~ column_sql ~ ")") }}
    {%- endif -%}
    {{ return(dbt_activate.default__activate_text(column_sql, kind)) }}
{% endmacro %}


{#- GoogleSQL: no to_char or varchar. A TIMESTAMP is an instant, printed in UTC; a DATETIME cast to
    TIMESTAMP is read as UTC, so its wall clock is kept. JSON, STRUCT and ARRAY cannot be cast to STRING. -#}
{% macro bigquery__activate_text(column_sql, kind) %}
    {%- if kind == 'boolean' -%}
        {{ return(dbt_activate.default__activate_text(column_sql, kind)) }}
    {%- elif kind in ('timestamp', 'timestamptz') -%}
        {{ return("format_timestamp('%Y-%m-%dT%H:%M:%E6S', cast(" ~ column_sql ~ " as timestamp), 'UTC')") }}
    {%- elif kind == 'semi_structured' -%}
        {{ return("to_json_string(" ~ column_sql ~ ")") }}
    {%- endif -%}
    {{ return("cast(" ~ column_sql ~ " as string)") }}
{% endmacro %}

{#- Spark and Databricks (dbt_activate/warehouse/spark.py): date_format patterns, to_json for nested types. -#}
{% macro spark__activate_text(column_sql, kind) %}
    {%- if kind in ('timestamp', 'timestamptz') -%}
        {%- set ts = column_sql if kind == 'timestamp' else "to_utc_timestamp(" ~ column_sql ~ ", current_timezone())" -%}
        {{ return("concat(date_format(" ~ ts ~ ", 'yyyy-MM-dd'), 'T', date_format(" ~ ts ~ ", 'HH:mm:ss.SSSSSS'))") }}
    {%- elif kind == 'boolean' -%}
        {{ return(dbt_activate.default__activate_text(column_sql, kind)) }}
    {%- elif kind == 'semi_structured' -%}
        {{ return("to_json(" ~ column_sql ~ ")") }}
    {%- endif -%}
    {{ return("cast(" ~ column_sql ~ " as string)") }}
{% endmacro %}

{% macro databricks__activate_text(column_sql, kind) %}
    {{ return(dbt_activate.spark__activate_text(column_sql, kind)) }}
{% endmacro %}
