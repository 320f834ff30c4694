module egress.test/e2e

go 1.19
