std = "max"
max_line_length = 110
files["spec/**/*.lua"] = { std = "+busted" }
files["lua/smtpkit/resty.lua"] = { globals = { "ngx" } }
files["examples/openresty/**/*.lua"] = { globals = { "ngx" } }
exclude_files = { "build/**" }
