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
local find, sub, format, byte = string.find, string.sub, string.format, string.byte
local payload_byte, payload_find, payload_sub = rm.payload_byte, rm.payload_find, rm.payload_sub
local abs = math.abs

local AMOUNT_MAX = 100000000000000 -- 10^14
local FEE_BPS_MAX = 10000
local LIMB = 1000000000 -- 10^9
local BIG = 1000000000000000 -- 10^15: numbers below take the fast path

-- Speed: everything below reads its text in place, byte by byte and by
-- position, rather than cutting it into new strings with string.sub or
-- string.match: a new string costs an allocation, hashing and garbage
-- collection, and LuaJIT compiles byte loops, not patterns. The payload
-- is read with rm.payload_byte, rm.payload_find and rm.payload_sub, so
-- that a `type<TAB>amount` payload never becomes a Lua string at all.

-- string.byte and string.sub's view of the event's payload (s is unused)
local function pbyte(_, i)
	return payload_byte(i)
end

local function psub(_, i, j)
	return payload_sub(i, j)
end

-- The decimal integer `-?[0-9]+` that is s from i to j and nothing else:
-- "ok", "range" (well formed, beyond int64) or nil (malformed), with its
-- value (exact below 2^53), how many digits it has without the sign and
-- leading zeros, where they start, and whether it is negative. s is read
-- with byte and sub, string.byte and string.sub by default.
local function parse_i64(s, i, j, byte, sub)
	byte, sub = byte or string.byte, sub or string.sub
	local neg = byte(s, i) == 45 -- '-'
	if neg then
		i = i + 1
	end
	if i > j then
		return nil
	end
	local first, v = nil, 0
	for k = i, j do
		local c = byte(s, k)
		if c < 48 or c > 57 then
			return nil
		end
		if first then
			v = v * 10 + (c - 48)
		elseif c ~= 48 then
			first, v = k, c - 48
		end
	end
	local nd = first and j - first + 1 or 0
	if nd > 15 then
		local digits = sub(s, first, j)
		if nd > 19 or (nd == 19 and digits > (neg and "9223372036854775808" or "9223372036854775807")) then
			return "range", 0, nd, first, neg
		end
		v = tonumber(digits) -- the nearest double, as C's strtod
	end
	return "ok", neg and -v or v, nd, first, neg
end

-- An integer field, s from i to j, in lo..hi (hi at most 10^14: exact).
local function field_i64(s, i, j, lo, hi)
	local st, v = parse_i64(s, i, j)
	if st ~= "ok" or v < lo or v > hi then
		return nil
	end
	return v
end

-- sign, max_amount, fee_bps of a rules row, or nil. Rows and payloads end
-- in an integer field, whose parsing refuses a further tab: only the tabs
-- before it need finding.
local function parse_rule(v)
	local t1 = find(v, "\t", 1, true)
	local t2 = t1 and find(v, "\t", t1 + 1, true)
	if not t2 then
		return nil
	end
	local sign, c1, c2 = nil, byte(v, 1, 2)
	if t1 == 2 and c1 == 49 then -- "1"
		sign = 1
	elseif t1 == 3 and c2 == 49 and (c1 == 43 or c1 == 45) then -- "+1", "-1"
		sign = c1 == 43 and 1 or -1
	else
		return nil
	end
	local max = field_i64(v, t1 + 1, t2 - 1, 1, AMOUNT_MAX)
	local fee = field_i64(v, t2 + 1, #v, 0, FEE_BPS_MAX)
	if not max or not fee then
		return nil
	end
	return sign, max, fee
end

-- frozen, overdraft_limit of an accounts row, or nil.
local function parse_account(v)
	local t1 = find(v, "\t", 1, true)
	if not t1 then
		return nil
	end
	local status, frozen = sub(v, 1, t1 - 1), nil
	if status == "frozen" then
		frozen = true
	elseif status == "active" then
		frozen = false
	else
		return nil
	end
	local limit = field_i64(v, t1 + 1, #v, 0, AMOUNT_MAX)
	if not limit then
		return nil
	end
	return frozen, limit
end

-- Parsed rows by their text, one cache per table: the tables have few
-- distinct rows (most accounts share theirs), and a lookup is cheaper than
-- parsing again. Keyed by the whole text, so a table reload that changes a
-- row makes a new entry; emptied when it grows large.
local CACHE_MAX = 4096

local function cache(parse)
	local rows, n = {}, 0
	return function(row)
		local p = rows[row]
		if p then
			return p
		end
		local a, b, c = parse(row)
		if a == nil then
			return nil
		end
		if n == CACHE_MAX then
			rows, n = {}, 0
		end
		p = {a, b, c}
		rows[row], n = p, n + 1
		return p
	end
end

local rule_of, account_of = cache(parse_rule), cache(parse_account)

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

-- type, amount status ("ok" or "range"), amount, amount text; nil when
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
			local s, a = parse_i64(v, 1, #v)
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
	return typ, st, amount, text
end

-- The same for the event's payload, `type<TAB>amount` or a JSON object.
-- The amount text is nil when it is what %d makes of the amount (no
-- leading zeros, not -0, exact): the output then formats the number.
local function parse_payload(ev)
	local lead, c = 1, payload_byte(1)
	while c == 32 or c == 9 or c == 13 or c == 10 do
		lead = lead + 1
		c = payload_byte(lead)
	end
	if c == 123 then -- '{'
		local typ, st, amount, text = parse_json(ev.payload)
		if typ then
			return typ, st, amount, text
		end
	end
	local t1 = payload_find("\t")
	if not t1 or t1 == 1 then
		return nil
	end
	local i, j = t1 + 1, rm.payload_len()
	local st, amount, nd, first, neg = parse_i64(nil, i, j, pbyte, psub)
	if not st then
		return nil
	end
	local text
	if st ~= "ok" or nd > 15 or (nd == 0 and (neg or j > i)) or (nd > 0 and first ~= (neg and i + 1 or i)) then
		text = payload_sub(i, j)
	end
	return payload_sub(1, t1 - 1), st, amount, text
end

-- ---- the rules --------------------------------------------------------------

-- The new state of a balance and count below 10^15 (exact as numbers).
local function apply(account, balance, count, delta, limit)
	local next = balance + delta
	if delta < 0 and next < -limit then
		return nil, "insufficient_funds"
	end
	rm.state_putf(account, "balance=%d count=%d", next, count + 1)
	return next
end

-- Returns the new balance (accepted: a number, or its text past 15 digits)
-- or nil and the rejection; false for data that does not parse (the batch
-- is not committed on it).
local function decide(account, typ, st, amount)
	local row = rm.table_get("rules", typ)
	if not row then
		return nil, "unknown_type"
	end
	local rule = rule_of(row)
	if not rule then
		rm.log("error", format("ledger: table rules: row '%s' does not parse: '%s'", typ, row))
		return false
	end
	row = rm.table_get("accounts", account)
	if not row then
		return nil, "unknown_account"
	end
	local account_row = account_of(row)
	if not account_row then
		rm.log("error",
			format("ledger: table accounts: row '%s' does not parse: '%s'", account, row))
		return false
	end
	local frozen, limit = account_row[1], account_row[2]
	if frozen then
		return nil, "frozen"
	end
	local sign, max, fee_bps = rule[1], rule[2], rule[3]
	if st ~= "ok" or amount < 1 or amount > max then
		return nil, "amount_out_of_range"
	end
	-- amount * fee_bps may pass 2^53: split the amount first.
	local q = math.floor(amount / 10000)
	local fee = q * fee_bps + math.floor((amount - q * 10000) * fee_bps / 10000)
	local delta = sign * amount - fee

	-- `balance=<b> count=<c>`: rm.state_getf reads the numbers without
	-- making the state a Lua string; past 15 digits (or when it does not
	-- match) the text is read below, for the exact path or the message.
	local balance, count = rm.state_getf(account, "balance=%d count=%d")
	if balance == nil or (balance and count >= 0 and count < BIG and abs(balance) < BIG) then
		return apply(account, balance or 0, count or 0, delta, limit)
	end
	local state = rm.state_get(account) -- there: rm.state_getf found it
	local bs, bnd, bfirst, bneg, sp, cs, cnd, cfirst
	if find(state, "balance=", 1, true) == 1 then
		sp = find(state, " ", 9, true)
		if sp and find(state, " count=", sp, true) == sp then
			bs, balance, bnd, bfirst, bneg = parse_i64(state, 9, sp - 1)
			cs, count, cnd, cfirst = parse_i64(state, sp + 7, #state)
		end
	end
	if bs ~= "ok" or cs ~= "ok" or count < 0 then
		rm.log("error", format("ledger: state of '%s' does not parse: '%s'", account, state))
		return false
	end
	if bnd > 15 or cnd > 15 then
		local bdigits = bfirst and sub(state, bfirst, sp - 1) or ""
		local cdigits = cfirst and sub(state, cfirst) or ""
		local text, shown = apply_exact(bdigits, bneg, cdigits, delta, limit)
		if not text then
			return nil, shown
		end
		rm.state_put(account, text)
		return shown
	end
	return apply(account, balance, count, delta, limit)
end

-- rm.emitf and rm.state_putf format into the worker's buffers: no Lua
-- string is made for a line or a state value. Formats by the Lua type of
-- the amount (a number or its text) and of the new balance.
local ACCEPTED = {
	number = {number = "%d\t%s\t%s\t%d\taccepted\t%d", string = "%d\t%s\t%s\t%d\taccepted\t%s"},
	string = {number = "%d\t%s\t%s\t%s\taccepted\t%d", string = "%d\t%s\t%s\t%s\taccepted\t%s"},
}
local REJECTED = {number = "%d\t%s\t%s\t%d\trejected\t%s", string = "%d\t%s\t%s\t%s\trejected\t%s"}

function process(ev)
	local typ, st, amount, text = parse_payload(ev)
	if not typ then
		return rm.reject("malformed")
	end
	local key = ev.key
	local shown, reason = decide(key, typ, st, amount)
	if shown == false then
		return rm.ERROR
	end
	local shown_amount = text or amount
	if not shown then
		rm.emitf(REJECTED[type(shown_amount)], ev.seq, key, typ, shown_amount, reason)
		rm.count(reason)
		return rm.OK
	end
	rm.emitf(ACCEPTED[type(shown_amount)][type(shown)], ev.seq, key, typ, shown_amount, shown)
	rm.count("accepted")
	return rm.OK
end
