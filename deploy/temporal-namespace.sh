#!/bin/sh
# One-shot: the namespace and csm's search attributes (ids and codes only, never PII).
set -eu
addr="${TEMPORAL_ADDRESS:-temporal:7233}"
ns="${NAMESPACE:-default}"
until temporal operator cluster health --address "$addr"; do sleep 2; done
temporal operator namespace describe -n "$ns" --address "$addr" \
  || temporal operator namespace create -n "$ns" --retention 30d --address "$addr"
for name in CsmCampaign CsmSubCampaign CsmDay CsmState; do
  temporal operator search-attribute create -n "$ns" --address "$addr" \
    --name "$name" --type Keyword || true
done
echo "namespace $ns ready"
