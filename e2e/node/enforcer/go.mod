// Only a place to run `go mod download` for the enforcer's source; build.sh builds a patched copy.
module lockstep.dev/node/enforcer

go 1.26.0
