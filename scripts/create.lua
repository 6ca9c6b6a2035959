-- wrk script: POST /api/executions with a JSON body; counts non-201 answers as errors.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/executions", nil, '{"name":"wrk-' .. counter .. '","command":"make test"}')
end
local bad = 0
response = function(status, headers, body)
  if status ~= 201 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("non-201 answers: %d\n", bad))
end
