module github.com/outrig/outrig/sdk-go

go 1.26

require github.com/outrig/outrig/api v0.0.0

replace github.com/outrig/outrig/api => ../api
