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


{#- The warehouses the CLI diffs in: md5() returns lower-case hex text and || concatenates text, so
    the default hashing holds; their normalisation differs and is dispatched in activate_text. -#}
{% macro duckdb__fingerprint(columns, relation=none) %}
    {{ return(dbt_activate.default__fingerprint(columns, relation)) }}
{% endmacro %}


{% macro postgres__fingerprint(columns, relation=none) %}
    {{ return(dbt_activate.default__fingerprint(columns, relation)) }}
{% endmacro %}


{% macro redshift__fingerprint(columns, relation=none) %}
    {{ return(dbt_activate.default__fingerprint(columns, relation)) }}
{% endmacro %}
