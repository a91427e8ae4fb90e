// Package clientgo holds the client-go compatibility test: typed clients
// with client-go's default settings (protobuf bodies, watch-list
// informers) against a real weir server. It has no non-test code.
package clientgo
