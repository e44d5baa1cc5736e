-- One row per fleet-partner lead: the deal sales works in the CRM.
-- Stage and amount follow from the fleet size the lead gave us: bigger fleets are further along
-- (they came through a sales call) and worth a yearly fee per vehicle in the local currency.
with leads as (
    select * from {{ ref('leads') }}
),

priced as (
    select
        leads.*,
        case country
            when 'RU' then 90000
            when 'GB' then 1000
            else 1200
        end as yearly_fee_per_vehicle,
        case country
            when 'RU' then 'RUB'
            when 'GB' then 'GBP'
            else 'EUR'
        end as currency
    from leads
)

select
    lead_id,
    -- The driver who brought the lead: the deal belongs to that driver's person record in the CRM.
    driver_id,
    lower(email) as email,
    company_name,
    company_name || ' fleet partnership' as deal_name,
    country,
    source,
    created_at,
    estimated_fleet_size,
    case
        when estimated_fleet_size is null then 'new'
        when estimated_fleet_size < 10 then 'qualified'
        when estimated_fleet_size < 50 then 'proposal'
        else 'negotiation'
    end as stage,
    cast(coalesce(estimated_fleet_size, 0) * yearly_fee_per_vehicle as numeric(14, 2)) as amount,
    currency,
    coalesce(estimated_fleet_size >= 50, false) as is_enterprise
from priced
