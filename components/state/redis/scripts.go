package redis

import goredis "github.com/redis/go-redis/v9"

// Storage format, the same as components-contrib's state.redis so that data
// written by one is read by the other: every key is a hash with the fields
// "data" (the value's bytes) and "version" (a decimal integer, the ETag).
//
// Versions are the server's clock in microseconds, or the previous version
// plus one when that is larger: a key that is deleted and written again
// never reuses an ETag a client may still hold.
//
// ETag rules, shared by every script: an ETag ("" means none) matches only
// an existing hash whose version equals it; a missing key never matches.
const luaLib = `
local function mismatch(key, etag)
  if etag == "" then return false end
  if redis.call("TYPE", key)["ok"] ~= "hash" then return true end
  return redis.call("HGET", key, "version") ~= etag
end
local function put(key, data, ttl)
  local now = redis.call("TIME")
  local v = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local t = redis.call("TYPE", key)["ok"]
  if t == "hash" then
    local old = tonumber(redis.call("HGET", key, "version"))
    if old and old >= v then v = old + 1 end
  elseif t ~= "none" then
    redis.call("DEL", key)
  end
  local vs = string.format("%.0f", v)
  redis.call("HSET", key, "data", data, "version", vs)
  local n = tonumber(ttl)
  if n and n > 0 then redis.call("EXPIRE", key, n) else redis.call("PERSIST", key) end
  return vs
end
`

// etagMismatchReply is the error reply of a script whose ETag check failed.
const etagMismatchReply = "ETAG_MISMATCH"

// setScript: KEYS[1]; ARGV: etag, data, ttl seconds ("" or <= 0: none).
// Returns the new version.
var setScript = goredis.NewScript(luaLib + `
if mismatch(KEYS[1], ARGV[1]) then return redis.error_reply("` + etagMismatchReply + `") end
return put(KEYS[1], ARGV[2], ARGV[3])
`)

// delScript: KEYS[1]; ARGV: etag. Returns the number of keys deleted.
var delScript = goredis.NewScript(luaLib + `
if mismatch(KEYS[1], ARGV[1]) then return redis.error_reply("` + etagMismatchReply + `") end
return redis.call("DEL", KEYS[1])
`)

// multiScript applies a transaction: KEYS are the operations' keys; ARGV
// holds four values per operation: "s" (set) or "d" (delete), etag, data,
// ttl. Every ETag is checked against the state before the transaction, and
// only when all match is anything written. A script runs atomically on the
// server, so no other client sees a part of it.
var multiScript = goredis.NewScript(luaLib + `
for i, key in ipairs(KEYS) do
  if mismatch(key, ARGV[4*i-2]) then return redis.error_reply("` + etagMismatchReply + ` " .. key) end
end
for i, key in ipairs(KEYS) do
  local b = 4*(i-1)
  if ARGV[b+1] == "s" then put(key, ARGV[b+3], ARGV[b+4]) else redis.call("DEL", key) end
end
return #KEYS
`)
