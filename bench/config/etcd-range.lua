-- POST /v3/kv/range for every key under the prefix (etcd's JSON gateway; keys are base64).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("ETCD_RANGE_BODY")
