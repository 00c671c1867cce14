-- bench/ingest_wrk.py's requests: signed Shopify orders/create webhooks, a fresh event id per
-- request, signed with HMAC-SHA256 through OpenSSL's HMAC() via LuaJIT's FFI (the body as
-- bench/ingest.py's order_body builds it, secret bench-shopify-secret).
local ffi = require("ffi")
ffi.cdef[[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]
local crypto = ffi.load("crypto")
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
local secret = "bench-shopify-secret"
local md = ffi.new("unsigned char[32]")
local mdlen = ffi.new("unsigned int[1]")
local counter = 0
local prefix = "wrk"
-- the event ids' prefix comes after "--" on wrk's command line: unique per run, so no request of
-- one run repeats an event id of another (a repeat would be a cheaper duplicate, not a new row)
function init(args)
  prefix = args[1] or prefix
end
function request()
  counter = counter + 1
  local n = counter
  local body = string.format('{"id": %d, "admin_graphql_api_id": "gid://shopify/Order/%d", "created_at": "2026-11-27T09:00:00Z", "updated_at": "2026-11-27T09:00:00Z", "email": "c%d@example.com", "customer": {"first_name": "Bench", "last_name": "%d"}, "note": "wrk", "line_items": [{"id": %d, "sku": "SKU%04d", "quantity": 1, "title": "Bench item", "price": "9.50"}]}', 10000000 + n, 10000000 + n, n, n, n, n % 200)
  crypto.HMAC(crypto.EVP_sha256(), secret, #secret, body, #body, md, mdlen)
  local sig = b64(ffi.string(md, mdlen[0]))
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-Shopify-Topic"] = "orders/create"
  headers["X-Shopify-Hmac-Sha256"] = sig
  headers["X-Shopify-Event-Id"] = prefix .. "-" .. n
  return wrk.format("POST", nil, headers, body)
end
