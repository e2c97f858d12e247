-- As authz.lua, with DEPTH requests written at once on each connection (HTTP/1.1 pipelining, as
-- EMQX's HTTP connector does by default: enable_pipelining = 100).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
  '{"username":"user1","clientid":"c1","topic":"a/b/c/user1","action":"publish","peerhost":"127.0.0.1"}',
  '{"username":"user1","clientid":"c1","topic":"a/b/c/admin","action":"publish","peerhost":"127.0.0.1"}',
}
local req
init = function(args)
  local depth = tonumber(args[1] or "10")
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, "/emqx/authz", nil, bodies[i % 2 + 1])
  end
  req = table.concat(r)
end
request = function()
  return req
end
