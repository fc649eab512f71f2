package repo

import "fmt"

// ObjectLock is an archive's object lock policy (S3 Object Lock). Every
// object is retained by the bucket's default retention, BucketDays()
// from its writing; an upload makes sure that every object the new
// snapshot needs and did not write (the packs it reuses, the index
// objects, the config and key files) is retained at least Days from
// now, extending those that end sooner to BucketDays() from now. So a
// snapshot stays whole for Days after its upload, whatever it reuses,
// and an object is extended at most once every ExtendDays.
type ObjectLock struct {
	Mode       string `json:"mode"`       // governance or compliance
	Days       int    `json:"days"`       // how long every snapshot is protected after its upload
	ExtendDays int    `json:"extendDays"` // the slack above Days that new and extended objects get
}

const maxLockDays = 100 * 365

func (o *ObjectLock) check() error {
	switch {
	case o.Mode != "governance" && o.Mode != "compliance":
		return fmt.Errorf("object lock mode %q: want governance or compliance", o.Mode)
	case o.Days < 1 || o.Days > maxLockDays:
		return fmt.Errorf("object lock of %d days: want 1 to %d", o.Days, maxLockDays)
	case o.ExtendDays < 1 || o.ExtendDays > maxLockDays:
		return fmt.Errorf("object lock slack of %d days: want 1 to %d", o.ExtendDays, maxLockDays)
	}
	return nil
}

// BucketDays is the bucket's default retention: Days and the slack.
func (o *ObjectLock) BucketDays() int { return o.Days + o.ExtendDays }
