package manifest

import (
	"errors"

	"github.com/hotsnap/hotsnap/errs"
)

var (
	// ErrCorrupt is returned when a manifest cannot be true: a broken seal,
	// a hostile path, impossible sizes or counts. The wrapping error names the entry.
	ErrCorrupt = errs.New(errs.VerifyFailed, "manifest is corrupt")
	// ErrUnsupportedFormat is returned for a manifest whose format number
	// this version does not know. It wraps ErrCorrupt.
	ErrUnsupportedFormat = errors.New("unsupported manifest format")
	// ErrIncompatible is returned by CheckCompatible when a snapshot may not
	// be restored onto the target (version, topology or encryption key).
	ErrIncompatible = errs.New(errs.Incompatible, "snapshot is incompatible with the target")
	// ErrVerifyFailed is returned when a tree differs from its manifest.
	ErrVerifyFailed = errs.ErrVerifyFailed
)
