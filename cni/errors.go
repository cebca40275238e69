package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error codes of CNI spec 1.1 that containernetworking/cni v1.3.0 has no
// constant for: STATUS answers them when the plugin cannot serve ADD.
const (
	// ErrPluginNotAvailable: the plugin cannot service ADD requests.
	ErrPluginNotAvailable uint = 50
)

// newError is a CNI error whose message is formatted like fmt.Errorf. Codes
// are the spec's well-known ones (types.Err*).
func newError(code uint, format string, args ...any) *types.Error {
	return types.NewError(code, fmt.Sprintf(format, args...), "")
}

// asCNIError returns err as a CNI error: a *types.Error anywhere in its chain
// keeps its code (with the outer message), anything else is an internal error.
func asCNIError(err error) *types.Error {
	if err == nil {
		return nil
	}
	var e *types.Error
	if errors.As(err, &e) {
		if e.Error() == err.Error() {
			return e
		}
		return types.NewError(e.Code, err.Error(), "")
	}
	return types.NewError(types.ErrInternal, err.Error(), "")
}

// agentError turns a failed call to weft-agent into a CNI error. An agent that
// cannot be reached (no socket, connection refused, deadline) is
// "try again later" (11): the runtime retries. An argument the agent rejects
// is an invalid network configuration (7); an unknown endpoint is an unknown
// container (3); anything else is internal (999) with the agent's message.
func agentError(ctx context.Context, op, socket string, err error) *types.Error {
	st, ok := status.FromError(err)
	msg := err.Error()
	if ok {
		msg = st.Message()
	}
	text := fmt.Sprintf("%s at weft-agent %s: %s", op, socket, msg)
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return newError(types.ErrTryAgainLater, "%s (the agent did not answer in time; retry)", text)
	}
	if !ok {
		return newError(types.ErrInternal, "%s", text)
	}
	switch st.Code() {
	case codes.Unavailable:
		return newError(types.ErrTryAgainLater, "%s (weft-agent is not running or not ready; retry)", text)
	case codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return newError(types.ErrTryAgainLater, "%s (retry later)", text)
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return newError(types.ErrInvalidNetworkConfig, "%s", text)
	case codes.NotFound:
		return newError(types.ErrUnknownContainer, "%s", text)
	default:
		return newError(types.ErrInternal, "%s", text)
	}
}

// dialError is the CNI error for an agent socket that is not there.
func dialError(err error) *types.Error {
	return newError(types.ErrTryAgainLater, "%v", err)
}

// isNotFound reports whether a gRPC error says the object does not exist.
func isNotFound(err error) bool {
	return status.Code(err) == codes.NotFound
}
