-- wrk script (benches/serve-load.sh): POST /emqx/authz publish checks of user1, alternately allowed
-- (its own topic) and denied (admin's), as benches/serve-load.rs sends them.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
  '{"username":"user1","clientid":"c1","topic":"a/b/c/user1","action":"publish","peerhost":"127.0.0.1"}',
  '{"username":"user1","clientid":"c1","topic":"a/b/c/admin","action":"publish","peerhost":"127.0.0.1"}',
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/emqx/authz", nil, bodies[n % 2 + 1])
end
