{#-
  activate_key(columns, relation=none): SQL expression for the key text dbt-activate stores per row,
  identical to the CLI's. One column: its normalised text (activate_text.sql). Several: their
  normalised texts joined with chr(31), the ASCII unit separator, which does not occur in real keys.
  The key is null when any part is null (|| propagates null), and the primary key tests forbid that.
-#}
{% macro activate_key(columns, relation=none) %}
    {{ return(adapter.dispatch('activate_key', 'dbt_activate')(columns, relation)) }}
{% endmacro %}


{% macro default__activate_key(columns, relation=none) %}
    {%- set texts = dbt_activate.activate_texts(columns, relation) -%}
    {%- if texts | length == 1 -%}
        {{ return(texts[0]) }}
    {%- endif -%}
    {{ return(texts | join(" || chr(31) || ")) }}
{% endmacro %}


{#- GoogleSQL has chr() and ||: the same expression, over BigQuery's texts (bigquery__activate_text). -#}
{% macro bigquery__activate_key(columns, relation=none) %}
    {{ return(dbt_activate.default__activate_key(columns, relation)) }}
{% endmacro %}
