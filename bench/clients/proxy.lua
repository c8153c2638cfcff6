-- wrk script of the PROXY measure (bench/lib/proxy.mjs): every request wrk sends starts with
-- a PROXY v2 header (TCP over IPv4, 203.0.113.7:51000 to 192.0.2.1:443, 28 bytes) when the
-- script's argument is "v2", and with nothing otherwise, so that both sides pay for the same
-- script. With "Connection: close" each request is a new connection, so each has one header.

local plain, req
-- wrk parses the first request() as HTTP once, before the load, to count pipelined requests:
-- that one is given without the header.
local verified = false

function init(args)
  plain = wrk.format()
  req = plain
  if args[1] == "v2" then
    req = "\r\n\r\n\0\r\nQUIT\n" ..
      string.char(0x21, 0x11, 0x00, 0x0c, 203, 0, 113, 7, 192, 0, 2, 1, 0xc7, 0x38, 0x01, 0xbb) .. plain
  end
end

function request()
  if not verified then
    verified = true
    return plain
  end
  return req
end
