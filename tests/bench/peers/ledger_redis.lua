#!lua name=ledger
-- ledger_redis.lua - the ledger as a Redis Function, for the Redis peer of
-- `make bench-peers` (issue 19; tests/bench/peers/peer_redis.c loads it
-- with FUNCTION LOAD and calls it once an event with FCALL). The rules are
-- those of worker/handlers/ledger.c, written again in Redis's Lua 5.1, for
-- TSV payloads (type<TAB>amount; the JSON form is not taken here):
--
--   FCALL ledger 5 s:ACCOUNT a:ACCOUNT r:TYPE out dead SEQ ACCOUNT TYPE AMOUNT
--
-- r:TYPE is a hash {sign, max, fee} (the rules table), a:ACCOUNT a hash
-- {status, limit} (the accounts table), s:ACCOUNT the state, a hash
-- {balance, count}. The outcome line, as the C ledger writes it, is pushed
-- on the list `out`; a malformed payload (an empty type, an amount that is
-- not -?[0-9]+) pushes `SEQ<TAB>malformed` on `dead` instead. Each call
-- runs alone and is in the AOF whole, so the state and its output line are
-- applied together or not at all.
--
-- Lua numbers are doubles: exact to 2^53, far beyond the table limits
-- (10^14) and any balance a benchmark reaches; a balance that would leave
-- that range is refused as balance_overflow.

local EXACT = 9007199254740992 -- 2^53

local function ledger(keys, args)
	local seq, account, typ, amount = args[1], args[2], args[3], args[4]
	if typ == '' or not string.find(amount, '^%-?%d+$') then
		redis.call('RPUSH', keys[5], seq .. '\tmalformed')
		return 0
	end
	local head = seq .. '\t' .. account .. '\t' .. typ .. '\t' .. amount .. '\t'
	local reason
	local rule = redis.call('HMGET', keys[3], 'sign', 'max', 'fee')
	if not rule[1] then
		reason = 'unknown_type'
	else
		local acct = redis.call('HMGET', keys[2], 'status', 'limit')
		local n = tonumber(amount)
		if not acct[1] then
			reason = 'unknown_account'
		elseif acct[1] == 'frozen' then
			reason = 'frozen'
		elseif n < 1 or n > tonumber(rule[2]) then
			reason = 'amount_out_of_range'
		else
			local fee = math.floor(n * tonumber(rule[3]) / 10000)
			local delta = tonumber(rule[1]) * n - fee
			local st = redis.call('HMGET', keys[1], 'balance', 'count')
			local balance = tonumber(st[1]) or 0
			local count = tonumber(st[2]) or 0
			local next = balance + delta
			if next >= EXACT or next <= -EXACT then
				reason = 'balance_overflow'
			elseif delta < 0 and next < -tonumber(acct[2]) then
				reason = 'insufficient_funds'
			else
				redis.call('HSET', keys[1], 'balance', string.format('%d', next),
					'count', count + 1)
				redis.call('RPUSH', keys[4], head .. 'accepted\t' .. string.format('%d', next))
				return 1
			end
		end
	end
	redis.call('RPUSH', keys[4], head .. 'rejected\t' .. reason)
	return 1
end

redis.register_function('ledger', ledger)
