package snapshot

import "github.com/hotsnap/hotsnap/internal/crash"

func crashPoint(step string) { crash.Point(step) }
