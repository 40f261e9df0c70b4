package transcode

import (
	"context"
	"log/slog"
	"strings"

	"github.com/asticode/go-astiav"
)

// RouteLogs sends FFmpeg's log messages at level or above to l. FFmpeg has a
// single, process-wide log callback, so this is called once, from main.
func RouteLogs(l *slog.Logger, level slog.Level) {
	astiav.SetLogLevel(avLevel(level))
	astiav.SetLogCallback(func(c astiav.Classer, lv astiav.LogLevel, _, msg string) {
		attrs := []slog.Attr{slog.String("component", "ffmpeg")}
		if c != nil {
			if cl := c.Class(); cl != nil {
				attrs = append(attrs, slog.String("class", cl.ItemName()))
			}
		}
		l.LogAttrs(context.Background(), slogLevel(lv), strings.TrimSpace(msg), attrs...)
	})
}

func avLevel(l slog.Level) astiav.LogLevel {
	switch {
	case l >= slog.LevelError:
		return astiav.LogLevelError
	case l >= slog.LevelWarn:
		return astiav.LogLevelWarning
	case l >= slog.LevelInfo:
		return astiav.LogLevelInfo
	}
	return astiav.LogLevelVerbose
}

func slogLevel(l astiav.LogLevel) slog.Level {
	switch {
	case l <= astiav.LogLevelError:
		return slog.LevelError
	case l <= astiav.LogLevelWarning:
		return slog.LevelWarn
	case l <= astiav.LogLevelInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
