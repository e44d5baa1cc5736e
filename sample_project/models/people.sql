-- One row per driver: the person record the CRM knows, with lifetime trip activity.
with drivers as (
    select * from {{ ref('drivers') }}
),

trip_stats as (
    select
        driver_id,
        count(*) as lifetime_trips,
        sum(fare_amount) as lifetime_revenue,
        max(started_at) as last_trip_at
    from {{ ref('trips') }}
    group by driver_id
)

select
    drivers.driver_id,
    -- Stable external id for CRMs that upsert on a text key (Salesforce external ids, HubSpot properties).
    'driver-' || cast(drivers.driver_id as varchar) as person_key,
    lower(drivers.email) as email,
    drivers.first_name,
    drivers.last_name,
    drivers.first_name || ' ' || drivers.last_name as full_name,
    drivers.phone,
    drivers.country,
    drivers.city,
    drivers.signup_date,
    drivers.status,
    drivers.rating,
    drivers.is_active,
    coalesce(trip_stats.lifetime_trips, 0) as lifetime_trips,
    cast(coalesce(trip_stats.lifetime_revenue, 0) as numeric(12, 2)) as lifetime_revenue,
    case drivers.country
        when 'RU' then 'RUB'
        when 'GB' then 'GBP'
        else 'EUR'
    end as revenue_currency,
    trip_stats.last_trip_at,
    drivers.updated_at
from drivers
left join trip_stats on trip_stats.driver_id = drivers.driver_id
