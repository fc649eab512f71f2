package report

import "strings"

// What an interrupted command (SIGINT, SIGTERM) left, and whether running
// it again resumes: said with the error, so nobody has to guess.
var interruptNotes = map[string]string{
	"create":   "no snapshot was published; the partial staging tree is removed by the next command of this data dir (or hotsnap recover); writes were resumed; run create again",
	"restore":  "the data dir is whole, either the old tree or the restored one: a swap in progress is finished or rolled back from its journal by the next command of this data dir (or hotsnap recover); run restore again",
	"delete":   "the snapshot is either still listed or gone, never half deleted (the next command finishes a removal begun); run delete again",
	"prune":    "each snapshot is either kept or removed whole; run prune again",
	"upload":   "the snapshot is not in the archive yet; the packs already sent stay and the next upload reuses them; run upload again",
	"download": "nothing was published into the backups dir; the staging tree is removed by the next command; run download again",
	"run":      "the steps that finished are done (see above); run it again: create makes a new snapshot, the rest resume",
	"recover":  "run recover again: it resumes where it stopped",
	"agent":    "the agent left etcd and resumed any writes it held",
}

// readOnly are the commands that change nothing, so an interrupt leaves
// nothing behind.
var readOnly = map[string]bool{"list": true, "ls": true, "diff": true, "cat": true, "verify": true, "usage": true, "version": true}

// InterruptNote says what an interrupt of the command args name left.
func InterruptNote(args []string) string {
	var words []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	if len(words) == 0 {
		return "nothing was started"
	}
	cmd := strings.Join(words, " ")
	switch {
	case readOnly[words[0]] || cmd == "archive ls" || cmd == "archive check" || cmd == "cluster list" || cmd == "cluster status":
		return "nothing was changed"
	case cmd == "archive gc":
		return "gc deletes only after its new index is written: at worst unreferenced packs are left, which the next gc removes; its lock is stale at once for this host; run gc again"
	case cmd == "archive forget":
		return "each snapshot is either still in the archive or forgotten; run forget again"
	case strings.HasPrefix(cmd, "cluster"):
		return "every node resumes writes when this coordinator's lock lease ends; a job keeps running on the agents (cluster status --job ID follows it); run the command again"
	}
	if n, ok := interruptNotes[words[0]]; ok {
		return n
	}
	return "run the command again"
}
