{#-
  activate_primary_key: the generic test for a sync's primary key. It fails on every key value that is
  null (in any of its columns) or shared by more than one row: the rows dbt-activate would reject as
  `null_key` / `duplicate_key`. One or several columns, on the model or on a column:

    models:
      - name: people
        data_tests:
          - dbt_activate.activate_primary_key:
              arguments: {columns: [driver_id]}      # dbt < 1.10: columns: [driver_id]
        columns:
          - name: person_key
            data_tests: [dbt_activate.activate_primary_key]

  Each failing row carries the key columns under their own names, `n_records` and `failure`
  (null_key | duplicate_key). With `store_failures: true` that table is what `quarantine: true`
  reads to hold those keys back instead of blocking the whole sync. Columns are written unquoted, as
  in dbt's own unique and not_null tests.
-#}
{% test activate_primary_key(model, column_name=none, columns=none) %}
    {{ return(adapter.dispatch('test_activate_primary_key', 'dbt_activate')(model, column_name, columns)) }}
{% endtest %}


{% macro default__test_activate_primary_key(model, column_name, columns) %}
    {%- set keys = columns if columns is not none else column_name -%}
    {%- if keys is string -%}
        {%- set keys = [keys] -%}
    {%- endif -%}
    {%- if keys is none or keys | length == 0 -%}
        {{ exceptions.raise_compiler_error("dbt_activate.activate_primary_key on " ~ model ~
            ": give `columns` (a column or a list) or put the test on a column") }}
    {%- endif -%}
    {%- set any_null = [] -%}
    {%- for key in keys -%}
        {%- do any_null.append(key ~ " is null") -%}
    {%- endfor %}
select
    {{ keys | join(', ') }},
    n_records,
    case when {{ any_null | join(' or ') }} then 'null_key' else 'duplicate_key' end as failure
from (
    select {{ keys | join(', ') }}, count(*) as n_records
    from {{ model }}
    group by {{ keys | join(', ') }}
) activate_keys
where {{ any_null | join(' or ') }} or n_records > 1
{%- endmacro %}
