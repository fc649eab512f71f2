package archive

import (
	"context"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/archive/store"
)

// Repo is an open archive: the repository of package repo (its format:
// config, keys, packs, index, locks, streams) with the operations of this
// package (upload, download, check, forget, gc, object lock upkeep).
type Repo struct{ *repo.Repo }

// Init initialises an empty store as an archive (repo.Init).
func Init(ctx context.Context, st store.Store, o repo.InitOptions) (*Repo, error) {
	return wrap(repo.Init(ctx, st, o))
}

// Open opens the archive in st (repo.Open); key is nil for an
// unencrypted archive.
func Open(ctx context.Context, st store.Store, key *repo.Key) (*Repo, error) {
	return wrap(repo.Open(ctx, st, key))
}

// OpenOrInit opens the archive in st, initialising it first when st
// holds none (repo.OpenOrInit).
func OpenOrInit(ctx context.Context, st store.Store, key *repo.Key) (*Repo, error) {
	return wrap(repo.OpenOrInit(ctx, st, key))
}

func wrap(r *repo.Repo, err error) (*Repo, error) {
	if err != nil {
		return nil, err
	}
	return &Repo{r}, nil
}
