-- counter.lua - a small Lua handler: counts events per key, tags each
-- output line with the [handler] tag parameter, and counts new and seen
-- keys for the summary (rm.count). See ringmaster-lua(7).
-- The [handler] settings it reads (rm.param): any other is warned about.
params = {"tag"}

local tag = "x"

function init()
	tag = rm.param("tag") or tag
end

function process(ev)
	if ev.payload == "" then
		return rm.reject("empty")
	end
	local n = tonumber(rm.state_get(ev.key) or "0") + 1
	rm.state_put(ev.key, tostring(n))
	rm.emit(string.format("%d\t%s\t%s\t%d", ev.seq, ev.key, tag, n))
	rm.count(n == 1 and "new_key" or "seen_key")
end
