module github.com/egress-proxy/egress/examples/go

go 1.19
