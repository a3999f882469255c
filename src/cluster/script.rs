//! The two Lua scripts that make Redis the one authority on a room's offsets.
//!
//! Owns their text and argument order. Each runs atomically in Redis, so every node sees one
//! order of publishes per room and the same offsets:
//!
//! - [`PUBLISH`]: the `msg_id` check, `INCR` of the offset, the epoch (created once with
//!   `SET NX`), `XADD` of the record with an exact `MAXLEN` (the room's history size), the
//!   expiries, `PUBLISH` on the room's channel, and the `msg_id` record (`SET … PX window`). A
//!   retry, on any node, finds the `msg_id` key and gets the original `<offset>:<epoch>` back with
//!   nothing appended or published.
//! - [`OPEN`]: the room's position (creating its epoch when the room has none) and, for a resume,
//!   the records after the client's offset — all or nothing, like the in-memory store: a replay
//!   is `recovered` only if the epoch matches and every missed record is still in the Stream and
//!   within the replay bound.
//!
//! The offset and epoch keys expire [`KEYS_TTL_MS`] after the room's last publish or open; the
//! Stream expires after the room's history ttl. A room whose keys expired, or that a restarted
//! Redis lost, starts over under a new epoch: `(offset, epoch)` still names one message.
//!
//! It must never be changed without its argument order in the bridge: the bridge calls these by
//! SHA (`EVALSHA`), loaded with `SCRIPT LOAD` on every (re)connect.

/// How long a room's offset and epoch outlive its last publish or join: one day. Longer than any
/// history ttl in use, so an idle room with members keeps its stream (a client's resume point
/// stays meaningful) while abandoned rooms leave Redis.
pub const KEYS_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// `KEYS`: offset, epoch, stream, msg_id key. `ARGV`: channel, body, a fresh epoch, history size,
/// stream ttl ms, keys ttl ms, dedup window ms, `1` when the msg_id key is used.
/// Answers `{fresh, "<offset>:<epoch>"}`: `fresh` 0 for a deduplicated retry.
pub const PUBLISH: &str = r"
if ARGV[8] == '1' then
  local seen = redis.call('GET', KEYS[4])
  if seen then return {0, seen} end
end
local o = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[3], 'NX')
local e = redis.call('GET', KEYS[2])
local rec = o .. ':' .. e .. ':' .. ARGV[2]
local size = tonumber(ARGV[4])
if size > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', size, o .. '-0', 'r', rec)
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[1], rec)
local at = o .. ':' .. e
if ARGV[8] == '1' then redis.call('SET', KEYS[4], at, 'PX', ARGV[7]) end
return {1, at}
";

/// `KEYS`: offset, epoch, stream. `ARGV`: a fresh epoch, keys ttl ms, the client's offset (`-1`:
/// no resume), its epoch, the replay bound. Answers `{"<offset>:<epoch>", status, record…}` with
/// status `-1` (no resume asked), `0` (lost: nothing replayed) or `1` (recovered: the records
/// after the client's offset, in order).
pub const OPEN: &str = r"
redis.call('SET', KEYS[1], 0, 'NX', 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local o = tonumber(redis.call('GET', KEYS[1]))
local e = redis.call('GET', KEYS[2])
local at = o .. ':' .. e
local since = tonumber(ARGV[3])
if since < 0 then return {at, -1} end
if ARGV[4] ~= e or since > o then return {at, 0} end
local missed = o - since
if missed == 0 then return {at, 1} end
if missed > tonumber(ARGV[5]) then return {at, 0} end
local entries = redis.call('XRANGE', KEYS[3], (since + 1) .. '-0', '+', 'COUNT', missed)
if #entries ~= missed then return {at, 0} end
local first = tonumber(string.match(entries[1][1], '^(%d+)'))
if first ~= since + 1 then return {at, 0} end
local out = {at, 1}
for i, entry in ipairs(entries) do out[i + 2] = entry[2][2] end
return out
";
