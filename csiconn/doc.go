// Package csiconn is the CSI core shared by every controller in this module:
// it dials a driver's socket, waits for it to become ready, reads its name and
// capabilities, bounds each call with a timeout, classifies gRPC errors, and
// records call metrics.
//
// # Guarantees
//
//   - Connect accepts "/path/to/socket" and "unix:///path/to/socket" (and any
//     other gRPC target, without connection-loss detection). It keeps dialing
//     with a one-second backoff, logging while the driver is not up, and gives
//     up with a descriptive error after Options.ConnectTimeout.
//   - Nothing here exits the process. When an established unix-socket
//     connection drops, Conn.Lost is closed; controllers return an error
//     wrapping ErrConnectionLost from their Run and the binary decides what to
//     do (the example binaries exit, so the driver's capabilities are re-read
//     on restart, as upstream does).
//   - Classify is the one place where gRPC status codes become final,
//     transient or infeasible, per operation (see its table).
//   - Every request is logged at verbosity 5 with CSI secrets replaced by
//     "***stripped***"; call durations are recorded in the histogram
//     csi_sidecar_operations_seconds{driver_name,method_name,grpc_status_code}.
//
// # Caveats
//
// Capabilities are read once, at Connect. A driver that changes its
// capabilities while running is only seen again after a new Connect.
package csiconn
