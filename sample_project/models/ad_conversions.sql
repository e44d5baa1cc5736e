-- One row per deal that reached a proposal: an offline conversion of the ad click that brought the
-- lead, sent back to Google Ads so bidding learns from what sales closes. The click id would come
-- from the lead form (a hidden gclid field); the sample makes one up from the lead id.
select
    lead_id,
    email,
    country,
    'EAIaIQobChMI-sample-' || cast(lead_id as varchar) as gclid,
    created_at as conversion_date_time,
    amount as conversion_value,
    currency as currency_code,
    'lead-' || cast(lead_id as varchar) as order_id
from {{ ref('deals') }}
where stage in ('proposal', 'negotiation')
