-- bench/http/pipeline.lua: wrk script that sends 16 pipelined requests per write, so the
-- per-request cost of parsing, routing and responding shows through the system calls.
init = function(args)
   local r = {}
   for i = 1, 16 do
      r[i] = wrk.format(nil, wrk.path)
   end
   req = table.concat(r)
end

request = function()
   return req
end
