-- bench/orders.lua — wrk script of bench/orders.sh: every request is a
-- `placeOrder` of one of the thread's customers (round robin, with its own
-- bearer token and client address), for 1..MAX_LINES distinct products of
-- PRODUCTS_FILE, 1..MAX_QTY units each, with a fresh idempotency key.
--
-- Arguments (after `--`): CUSTOMERS_FILE ("TOKEN ADDRESS" per line)
-- PRODUCTS_FILE (one id per line) MAX_LINES MAX_QTY TAG THREADS.
--
-- Prints "RESULT seconds placed p50_us p99_us socket_errors", then one
-- "REFUSED KIND COUNT" line per kind of refusal (error code; rate limits
-- split into the cost bucket's and placeOrder's own).
local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

local customers, products = {}, {}
local max_lines, max_qty, tag
local counter = 0
placed, refused = 0, {}

function init(args)
    local nthreads = tonumber(args[6])
    local i = 0
    for line in io.lines(args[1]) do
        if i % nthreads == tid then
            local token, address = line:match("^(%S+) (%S+)$")
            customers[#customers + 1] = { "Bearer " .. token, address }
        end
        i = i + 1
    end
    for line in io.lines(args[2]) do
        products[#products + 1] = line
    end
    max_lines = math.min(tonumber(args[3]), #products)
    max_qty = tonumber(args[4])
    tag = args[5]
    math.randomseed(os.time() * 1000 + tid)
end

local query = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status } }"

function request()
    counter = counter + 1
    local customer = customers[counter % #customers + 1]
    local picked, lines = {}, {}
    for _ = 1, math.random(1, max_lines) do
        local product = products[math.random(#products)]
        while picked[product] do
            product = products[math.random(#products)]
        end
        picked[product] = true
        lines[#lines + 1] = string.format('{"productId":"%s","quantity":%d}', product, math.random(1, max_qty))
    end
    local body = string.format(
        '{"query":"%s","variables":{"i":{"lines":[%s],"paymentToken":"sandbox_ok","idempotencyKey":"%s-%d-%d"}}}',
        query, table.concat(lines, ","), tag, tid, counter)
    return wrk.format("POST", "/graphql", {
        ["Content-Type"] = "application/json",
        ["Authorization"] = customer[1],
        ["X-Forwarded-For"] = customer[2],
    }, body)
end

function response(status, headers, body)
    if status == 200 and body:find('"placeOrder":{"id"', 1, true) then
        placed = placed + 1
        return
    end
    local kind
    if body:find("Throttled:", 1, true) then
        kind = "RATE_LIMITED(cost_bucket)"
    elseif body:find("too many attempts", 1, true) then
        kind = "RATE_LIMITED(place_order_user)"
    else
        kind = body:match('"code":"([A-Z_]+)"') or ("HTTP_" .. status)
    end
    refused[kind] = (refused[kind] or 0) + 1
end

function done(summary, latency, requests)
    local total, kinds = 0, {}
    for _, thread in ipairs(threads) do
        total = total + thread:get("placed")
        for kind, n in pairs(thread:get("refused")) do
            kinds[kind] = (kinds[kind] or 0) + n
        end
    end
    local e = summary.errors
    io.write(string.format("RESULT %.3f %d %d %d %d\n", summary.duration / 1e6, total,
        latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout))
    for kind, n in pairs(kinds) do
        io.write(string.format("REFUSED %s %d\n", kind, n))
    end
end
