"""The Cloudflare API subset (contract/cloudflare-api.md): versions, deployments, tail, KV."""
