-- ledger.lua - the ledger demo in Lua: the same rules, output and state as
-- the built-in C `ledger` handler (worker/handlers/ledger.c), byte for byte.
--
--   [worker]
--   handler = ledger.lua
--
-- An event is `account -> type<TAB>amount` (or a JSON object with the
-- fields type, amount and to), the amount an integer in cents. Two tables:
--
--   rules     type -> sign<TAB>max_amount<TAB>fee_bps   (sign +1 or -1)
--   accounts  account -> status<TAB>overdraft_limit      (active | frozen)
--
-- State per account: `balance=<int> count=<int>`. Output, one line an event:
--
--   seq<TAB>account<TAB>type<TAB>amount<TAB>accepted<TAB>new_balance
--   seq<TAB>account<TAB>type<TAB>amount<TAB>rejected<TAB>reason
--
-- Lua numbers are doubles, exact up to 2^53. Table values are at most
-- 10^14, so amounts and fees are exact; a balance or a count that does not
-- fit in 15 digits takes the exact path (two limbs of 9 digits each).

local rm = rm
local find, sub, match, format, byte = string.find, string.sub, string.match, string.format,
	string.byte

local AMOUNT_MAX = 100000000000000 -- 10^14
local FEE_BPS_MAX = 10000
local LIMB = 1000000000 -- 10^9

-- A decimal integer `-?[0-9]+` and nothing else: "ok", "range" (well formed,
-- beyond int64) or nil (malformed), with its value (exact below 2^53) and
-- its digits without the sign and leading zeros. Byte by byte rather than
-- with string.match: LuaJIT compiles this, not the patterns.
local function parse_i64(s)
	local n = #s
	local i = byte(s, 1) == 45 and 2 or 1
	if i > n then
		return nil
	end
	local first, v = nil, 0
	for j = i, n do
		local c = byte(s, j)
		if c < 48 or c > 57 then
			return nil
		end
		if first then
			v = v * 10 + (c - 48)
		elseif c ~= 48 then
			first, v = j, c - 48
		end
	end
	local neg = i == 2
	local digits = first and sub(s, first) or ""
	local nd = first and n - first + 1 or 0
	if nd > 15 then
		if nd > 19 or (nd == 19 and digits > (neg and "9223372036854775808" or "9223372036854775807")) then
			return "range", 0, digits, neg
		end
		v = tonumber(digits) -- the nearest double, as C's strtod
	end
	return "ok", neg and -v or v, digits, neg
end

-- An integer field in lo..hi (hi at most 10^14: exact).
local function field_i64(s, lo, hi)
	local st, v = parse_i64(s)
	if st ~= "ok" or v < lo or v > hi then
		return nil
	end
	return v
end

-- The tab-separated fields of s when it has exactly `n` (2 or 3).
local function fields(s, n)
	local t1 = find(s, "\t", 1, true)
	if not t1 then
		return nil
	end
	local t2 = find(s, "\t", t1 + 1, true)
	if n == 2 then
		if t2 then
			return nil
		end
		return sub(s, 1, t1 - 1), sub(s, t1 + 1)
	end
	if not t2 or find(s, "\t", t2 + 1, true) then
		return nil
	end
	return sub(s, 1, t1 - 1), sub(s, t1 + 1, t2 - 1), sub(s, t2 + 1)
end

local function split2(s)
	return fields(s, 2)
end

local function parse_rule(v)
	local sign, max, fee = fields(v, 3)
	if not sign then
		return nil
	end
	if sign == "+1" or sign == "1" then
		sign = 1
	elseif sign == "-1" then
		sign = -1
	else
		return nil
	end
	max = field_i64(max, 1, AMOUNT_MAX)
	fee = field_i64(fee, 0, FEE_BPS_MAX)
	if not max or not fee then
		return nil
	end
	return sign, max, fee
end

local function parse_account(v)
	local status, limit = split2(v)
	if not status then
		return nil
	end
	local frozen
	if status == "frozen" then
		frozen = true
	elseif status == "active" then
		frozen = false
	else
		return nil
	end
	limit = field_i64(limit, 0, AMOUNT_MAX)
	if not limit then
		return nil
	end
	return frozen, limit
end

-- ---- exact int64 arithmetic, for balances past 15 digits ------------------

-- A value as (hi, lo) with value = hi * 10^9 + lo, |lo| < 10^9 and lo of
-- the sign of hi: such pairs compare as tuples.
local function limbs(digits, neg)
	local n = #digits
	local hi = n > 9 and tonumber(sub(digits, 1, n - 9)) or 0
	local lo = tonumber(sub(digits, n > 9 and n - 8 or 1)) or 0
	if neg then
		return -hi, -lo
	end
	return hi, lo
end

local function normalize(hi, lo)
	if lo >= LIMB then
		hi, lo = hi + 1, lo - LIMB
	elseif lo <= -LIMB then
		hi, lo = hi - 1, lo + LIMB
	end
	if hi > 0 and lo < 0 then
		hi, lo = hi - 1, lo + LIMB
	elseif hi < 0 and lo > 0 then
		hi, lo = hi + 1, lo - LIMB
	end
	return hi, lo
end

local function less(ah, al, bh, bl)
	return ah < bh or (ah == bh and al < bl)
end

local function limbs_text(hi, lo)
	if hi == 0 then
		return format("%d", lo)
	end
	return format("%s%d%09d", hi < 0 and "-" or "", math.abs(hi), math.abs(lo))
end

-- The new state text, or nil and the rejection.
local function apply_exact(bdigits, bneg, cdigits, delta, limit)
	if cdigits == "9223372036854775807" then
		return nil, "balance_overflow"
	end
	local bh, bl = limbs(bdigits, bneg)
	local dh, dl = limbs(format("%d", math.abs(delta)), delta < 0)
	local nh, nl = normalize(bh + dh, bl + dl)
	-- Beyond int64: past 9223372036 854775807, or below -9223372036 854775808.
	if less(9223372036, 854775807, nh, nl) or less(nh, nl, -9223372036, -854775808) then
		return nil, "balance_overflow"
	end
	local lh, ll = limbs(format("%d", limit), true)
	if delta < 0 and less(nh, nl, lh, ll) then
		return nil, "insufficient_funds"
	end
	local ch, cl = limbs(cdigits, false)
	ch, cl = normalize(ch, cl + 1)
	return "balance=" .. limbs_text(nh, nl) .. " count=" .. limbs_text(ch, cl), limbs_text(nh, nl)
end

-- ---- payloads ---------------------------------------------------------------

-- type, amount text, amount status ("ok" or "range"), amount; nil when
-- malformed. The JSON rules are the C ledger's (ledger.h).
local function parse_json(payload)
	local m = rm.json_members(payload)
	if not m then
		return nil
	end
	local typ, text, st, amount
	for i = 1, #m, 3 do
		local name, kind, v = m[i], m[i + 1], m[i + 2]
		if name == "type" then
			if kind ~= "string" or #v == 0 or #v > 255 or find(v, "\t", 1, true) then
				return nil
			end
			typ = v
		elseif name == "amount" then
			if kind ~= "number" or #v > 32 or find(v, "[.eE]") then
				return nil
			end
			local s, a = parse_i64(v)
			if not s then
				return nil
			end
			text, st, amount = v, s, a
		elseif name == "to" then
			if kind ~= "string" then
				return nil
			end
		end
	end
	if not typ or not text then
		return nil
	end
	return typ, text, st, amount
end

local function parse_payload(payload)
	local lead, c = 1, byte(payload, 1)
	while c == 32 or c == 9 or c == 13 or c == 10 do
		lead = lead + 1
		c = byte(payload, lead)
	end
	if c == 123 then -- '{'
		local typ, text, st, amount = parse_json(payload)
		if typ then
			return typ, text, st, amount
		end
	end
	local typ, text = split2(payload)
	if not typ or typ == "" then
		return nil
	end
	local st, amount = parse_i64(text)
	if not st then
		return nil
	end
	return typ, text, st, amount
end

-- ---- the rules --------------------------------------------------------------

-- Returns the new balance text (accepted) or nil and the rejection; raises
-- an error for data that does not parse (the batch is not committed on it).
local function decide(account, typ, st, amount)
	local row = rm.table_get("rules", typ)
	if not row then
		return nil, "unknown_type"
	end
	local sign, max, fee_bps = parse_rule(row)
	if not sign then
		rm.log("error", format("ledger: table rules: row '%s' does not parse: '%s'", typ, row))
		return false
	end
	row = rm.table_get("accounts", account)
	if not row then
		return nil, "unknown_account"
	end
	local frozen, limit = parse_account(row)
	if frozen == nil then
		rm.log("error",
			format("ledger: table accounts: row '%s' does not parse: '%s'", account, row))
		return false
	end
	if frozen then
		return nil, "frozen"
	end
	if st ~= "ok" or amount < 1 or amount > max then
		return nil, "amount_out_of_range"
	end
	-- amount * fee_bps may pass 2^53: split the amount first.
	local q = math.floor(amount / 10000)
	local fee = q * fee_bps + math.floor((amount - q * 10000) * fee_bps / 10000)
	local delta = sign * amount - fee

	local state = rm.state_get(account)
	local bs, balance, bdigits, bneg, cs, count, cdigits = "ok", 0, "0", false, "ok", 0, "0"
	if state then
		local b, c
		if sub(state, 1, 8) == "balance=" then
			local sp = find(state, " ", 9, true)
			if sp and sub(state, sp, sp + 6) == " count=" then
				b, c = sub(state, 9, sp - 1), sub(state, sp + 7)
			end
		end
		if b then
			bs, balance, bdigits, bneg = parse_i64(b)
			cs, count, cdigits = parse_i64(c)
		end
		if not b or bs ~= "ok" or cs ~= "ok" or count < 0 then
			rm.log("error",
				format("ledger: state of '%s' does not parse: '%s'", account, state))
			return false
		end
	end
	if #bdigits > 15 or #cdigits > 15 then
		local text, shown = apply_exact(bdigits, bneg, cdigits, delta, limit)
		if not text then
			return nil, shown
		end
		rm.state_put(account, text)
		return shown
	end
	local next = balance + delta
	if delta < 0 and next < -limit then
		return nil, "insufficient_funds"
	end
	local shown = format("%d", next)
	rm.state_put(account, "balance=" .. shown .. " count=" .. format("%d", count + 1))
	return shown
end

function process(ev)
	local typ, text, st, amount = parse_payload(ev.payload)
	if not typ then
		return rm.reject("malformed")
	end
	local shown, reason = decide(ev.key, typ, st, amount)
	if shown == false then
		return rm.ERROR
	end
	-- rm.emit joins its pieces: cheaper than building the line in Lua
	local seq = format("%d", ev.seq)
	if shown then
		rm.emit(seq, "\t", ev.key, "\t", typ, "\t", text, "\taccepted\t", shown)
		rm.count("accepted")
	else
		rm.emit(seq, "\t", ev.key, "\t", typ, "\t", text, "\trejected\t", reason)
		rm.count(reason)
	end
	return rm.OK
end
