#!/usr/bin/env bash
# The sample project end to end, on DuckDB, with no credentials and no network:
#   dbt build -> dbt-activate run (files + the bundled webhook receiver) -> change a seed -> again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(bash "$root/scripts/bootstrap.sh" duckdb | tail -n 1)
export PATH="$venv/bin:$PATH" DBT_SEND_ANONYMOUS_USAGE_STATS=false
work=$(mktemp -d)
trap 'kill "${receiver_pid:-}" "${hubspot_pid:-}" "${google_ads_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -R "$root/sample_project/." "$work/"
cd "$work"

# The bundled receiver stands in for a CRM's webhook endpoint. Each emulator gets up to 60 s to print its URL
# (a loaded machine imports slowly).
python -m dbt_activate.testing webhook --port 0 > "$work/receiver.url" &
receiver_pid=$!
for _ in $(seq 600); do [ -s "$work/receiver.url" ] && break; sleep 0.1; done
export CRM_WEBHOOK_URL="$(head -n 1 "$work/receiver.url")/hooks/deals"
# The bundled HubSpot emulator (CRM v3 batch API, v4 associations, 100 requests per 10 s) stands in for
# HubSpot, with the unique `lead_id` deal property the deals sync upserts by (emulators/crm_hubspot.json).
python -m dbt_activate.testing hubspot --port 0 --rate-limit vendor --schema "$work/emulators/crm_hubspot.json" \
  > "$work/hubspot.url" &
hubspot_pid=$!
for _ in $(seq 600); do [ -s "$work/hubspot.url" ] && break; sleep 0.1; done
export HUBSPOT_BASE_URL="$(head -n 1 "$work/hubspot.url")" HUBSPOT_TOKEN=test-token
# The bundled Google Ads emulator (v25 REST: OAuth, conversions, Customer Match jobs) stands in for Google Ads.
python -m dbt_activate.testing google_ads --port 0 > "$work/google_ads.url" &
google_ads_pid=$!
for _ in $(seq 600); do [ -s "$work/google_ads.url" ] && break; sleep 0.1; done
export GOOGLE_ADS_BASE_URL="$(head -n 1 "$work/google_ads.url")"

echo "== dbt deps (the sample installs the dbt-activate dbt package from this checkout)"
DBT_ACTIVATE_PACKAGE_DIR="$root" dbt deps --profiles-dir . --quiet
echo "== dbt build"
dbt build --profiles-dir . --quiet
echo "== dbt-activate run (first run: every row of every segment is sent)"
dbt-activate run --profiles-dir .

echo "== a GB driver moves city, a FR driver leaves, a RU driver joins, a GB lead is handed to another driver; dbt build again"
python - <<'PY'
import csv
rows = list(csv.DictReader(open("seeds/drivers.csv")))
first = {c: next(r for r in rows if r["country"] == c) for c in ("GB", "FR", "RU")}
first["GB"]["city"] = "Leeds" if first["GB"]["city"] != "Leeds" else "York"
rows.remove(first["FR"])
rows.append({**first["RU"], "driver_id": "9001", "email": "new.driver9001@example.com"})
trips = [t for t in csv.DictReader(open("seeds/trips.csv")) if t["driver_id"] != first["FR"]["driver_id"]]
leads = list(csv.DictReader(open("seeds/leads.csv")))
gb = [r for r in leads if r["country"] == "GB" and r["driver_id"]]
gb[0]["driver_id"] = gb[1]["driver_id"]  # its HubSpot deal moves to that driver's contact
for path, table in (("seeds/drivers.csv", rows), ("seeds/trips.csv", trips), ("seeds/leads.csv", leads)):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
PY
dbt build --profiles-dir . --quiet
echo "== dbt-activate plan (what the next run would send, rendered as each destination would receive it; nothing sent)"
dbt-activate plan --profiles-dir . --samples 1
echo "== dbt-activate run (second run: only what changed is sent)"
dbt-activate run --profiles-dir .

echo "== what the destinations received"
find activate_output -type f | sort | while read -r f; do echo "$f: $(wc -l < "$f") line(s)"; done
echo "HubSpot emulator contacts: $(curl -s "$HUBSPOT_BASE_URL/_emulator/records/contacts" | python -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo '?')"
# Each GB deal's contact association (v4 batch read), by lead_id -> the contact's email: its driver's.
python - <<'PY'
import json, os, urllib.request
base, headers = os.environ["HUBSPOT_BASE_URL"], {"Authorization": "Bearer test-token", "Content-Type": "application/json"}
get = lambda path: json.load(urllib.request.urlopen(base + path))
deals, contacts = get("/_emulator/records/deals"), {c["id"]: c["properties"]["email"] for c in get("/_emulator/records/contacts")}
body = json.dumps({"inputs": [{"id": d["id"]} for d in deals]}).encode()
request = urllib.request.Request(base + "/crm/v4/associations/deals/contacts/batch/read", body, headers)
linked = {r["from"]["id"]: [contacts[str(t["toObjectId"])] for t in r["to"]]
          for r in json.load(urllib.request.urlopen(request))["results"] if r["to"]}
print(f"HubSpot emulator deals: {len(deals)}, {len(linked)} associated with their driver's contact:")
for d in sorted(deals, key=lambda d: int(d["properties"]["lead_id"])):
    print(f"  lead {d['properties']['lead_id']}: {', '.join(linked.get(d['id'], [])) or '(no driver)'}")
PY
count() { curl -s "$1" | python -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null || echo '?'; }
echo "Google Ads emulator: $(count "$GOOGLE_ADS_BASE_URL/_emulator/records/5550001") Customer Match member(s) (hashed), $(count "$GOOGLE_ADS_BASE_URL/_emulator/records/conversions") conversion(s)"
if [ -n "${KEEP_QUICKSTART:-}" ]; then cp -R "$work" "$KEEP_QUICKSTART"; echo "copied to $KEEP_QUICKSTART"; fi
