package cluster

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hotsnap/hotsnap/errs"
)

// RemoteError is an error an agent reported, kept with its node and kind
// (the errs.Kind's name). It unwraps to that kind's sentinel, so errs.Of
// and errors.Is(err, errs.ErrNotFound) work across the wire.
type RemoteError struct {
	Node    string `json:"node"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *RemoteError) Error() string { return fmt.Sprintf("node %s: %s", e.Node, e.Message) }

func (e *RemoteError) Unwrap() error { return errs.Sentinel(errs.ParseKind(e.Kind)) }

// asRemote keeps err as a node's error: unchanged when it is one already.
func asRemote(node string, err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	return &RemoteError{Node: node, Kind: errs.Of(err).String(), Message: err.Error()}
}

// httpStatus is the status an agent answers an error of kind k with.
func httpStatus(k errs.Kind) int {
	switch k {
	case errs.Usage:
		return http.StatusBadRequest
	case errs.LockTimeout, errs.Conflict:
		return http.StatusConflict
	case errs.VerifyFailed, errs.Incompatible:
		return http.StatusUnprocessableEntity
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.Throttled:
		return http.StatusTooManyRequests
	case errs.Interrupted:
		return 499 // nginx's "client closed request"
	}
	return http.StatusInternalServerError
}
