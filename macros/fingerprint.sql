{#-
  fingerprint(columns, relation=none): SQL expression for the fingerprint dbt-activate keeps per row
  and per sync, identical to the one its diff SQL computes, so a model can expose it or test against it.

    select {{ dbt_activate.fingerprint(['email', 'status', 'updated_at'], ref('people')) }} as fp
    from {{ ref('people') }}

  columns:  column names, in the order of the sync's mapped fields (the order changes the value).
  relation: where to read the columns' data types (booleans and timestamps are normalised); without
            it every column is cast to text as is.

  Each column's normalised text (see activate_text.sql) is hashed on its own, a null column hashes to
  '-' (no md5 looks like that, so null and '' differ), and the row fingerprint is md5 of the hashes
  concatenated: md5(coalesce(md5(t1), '-') || ... || coalesce(md5(tn), '-')).

  DuckDB and PostgreSQL (after 0.1.0): one md5 over one concatenation, each text prefixed by its
  length in bytes and ':' ('-:' for null), in upper-case hex:
  upper(md5(concat(coalesce(cast(strlen(t1) as varchar), '-'), ':', t1, ...))). The upper case tells
  it from the per-column form, which the CLI still recognises in snapshots 0.1.0 wrote.
-#}
{% macro fingerprint(columns, relation=none) %}
    {{ return(adapter.dispatch('fingerprint', 'dbt_activate')(columns, relation)) }}
{% endmacro %}


{% macro default__fingerprint(columns, relation=none) %}
    {%- set hashes = [] -%}
    {%- for text in dbt_activate.activate_texts(columns, relation) -%}
        {%- do hashes.append("coalesce(md5(" ~ text ~ "), '-')") -%}
    {%- endfor -%}
    {{ return("md5(" ~ hashes | join(" || ") ~ ")") }}
{% endmacro %}


{#- One md5 a row instead of one a column: in the CLI's diff, 19 md5 calls a row were most of its
    time (dbt_activate/warehouse/dialect.py, Dialect.fingerprint). -#}
{% macro duckdb__fingerprint(columns, relation=none) %}
    {%- set parts = [] -%}
    {%- for text in dbt_activate.activate_texts(columns, relation) -%}
        {%- do parts.append("coalesce(cast(strlen(" ~ text ~ ") as varchar), '-'), ':', " ~ text) -%}
    {%- endfor -%}
    {{ return("upper(md5(concat(" ~ parts | join(", ") ~ ")))") }}
{% endmacro %}


{#- As DuckDB's, with || (PostgreSQL's concat() takes at most 100 arguments) and octet_length. -#}
{% macro postgres__fingerprint(columns, relation=none) %}
    {%- set parts = [] -%}
    {%- for text in dbt_activate.activate_texts(columns, relation) -%}
        {%- do parts.append("coalesce(cast(octet_length(" ~ text ~ ") as varchar), '-') || ':' || coalesce(" ~ text ~ ", '')") -%}
    {%- endfor -%}
    {{ return("upper(md5(" ~ parts | join(" || ") ~ "))") }}
{% endmacro %}


{#- Redshift keeps the per-column form: a concatenation of whole texts could pass its 65,535-byte
    limit on ||, while 32 bytes a column stays far below it. -#}
{% macro redshift__fingerprint(columns, relation=none) %}
    {{ return(dbt_activate.default__fingerprint(columns, relation)) }}
{% endmacro %}


{#- One MD5_HEX a row, lower-case hex: the length in characters (Snowflake's length()) keeps the
    concatenation injective, as octet_length does on PostgreSQL. -#}
{% macro snowflake__fingerprint(columns, relation=none) %}
    {%- set parts = [] -%}
    {%- for text in dbt_activate.activate_texts(columns, relation) -%}
        {%- do parts.append("coalesce(cast(length(" ~ text ~ ") as varchar), '-') || ':' || coalesce(" ~ text ~ ", '')") -%}
    {%- endfor -%}
    {{ return("md5_hex(" ~ parts | join(" || ") ~ ")") }}
{% endmacro %}


{#- As PostgreSQL's, in GoogleSQL: byte_length, and to_hex(md5()) since md5() returns BYTES. -#}
{% macro bigquery__fingerprint(columns, relation=none) %}
    {%- set parts = [] -%}
    {%- for text in dbt_activate.activate_texts(columns, relation) -%}
        {%- do parts.append("coalesce(cast(byte_length(" ~ text ~ ") as string), '-') || ':' || coalesce(" ~ text ~ ", '')") -%}
    {%- endfor -%}
    {{ return("to_hex(md5(" ~ parts | join(" || ") ~ "))") }}
{% endmacro %}

{#- Spark and Databricks: one md5 a row over concat_ws('', ...) of the length-prefixed texts, lower-case
    hex (dbt_activate/warehouse/spark.py). -#}
{% macro spark__fingerprint(columns, relation=none) %}
    {%- set parts = [] -%}
    {%- for text in dbt_activate.activate_texts(columns, relation) -%}
        {%- do parts.append("coalesce(cast(length(" ~ text ~ ") as string), '-'), ':', coalesce(" ~ text ~ ", '')") -%}
    {%- endfor -%}
    {{ return("md5(concat_ws('', " ~ parts | join(", ") ~ "))") }}
{% endmacro %}

{% macro databricks__fingerprint(columns, relation=none) %}
    {{ return(dbt_activate.spark__fingerprint(columns, relation)) }}
{% endmacro %}
