package cluster

import (
	"errors"
	"fmt"

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
