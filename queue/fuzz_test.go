package queue_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/queue"
)

// FuzzParseEvent: a bucket notification either fails or yields only
// object-created uploads with a bucket and a key; the uploads survive being
// written back as an event; and each makes a valid job the way the
// worker's intake makes it (default asset id and profile). The committed
// seed corpus is in testdata/fuzz/FuzzParseEvent/.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"ingest"},"object":{"key":"a%2Fb+c.mp4","size":1,"eTag":"\"e\""}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ups, err := queue.ParseEvent(data)
		if err != nil {
			if ups != nil {
				t.Fatalf("ParseEvent: %v with uploads %+v", err, ups)
			}
			return
		}
		for _, u := range ups {
			if !strings.HasPrefix(u.Event, "s3:ObjectCreated:") || u.Bucket == "" || u.Key == "" {
				t.Fatalf("upload %+v accepted", u)
			}
			src := asset.Source{Bucket: u.Bucket, Key: u.Key, VersionID: u.VersionID, ETag: u.ETag}
			if _, err := asset.NewJob(src, "", "", "upload-event", time.Unix(1, 0)); err != nil {
				t.Fatalf("upload %+v makes no job: %v", u, err)
			}
		}
		back, err := queue.ParseEvent(eventOf(t, ups))
		if err != nil || !slices.Equal(back, ups) {
			t.Fatalf("uploads written back as an event: %+v, %v, want %+v", back, err, ups)
		}
	})
}

// eventOf writes uploads as a MinIO bucket notification.
func eventOf(t *testing.T, ups []queue.Upload) []byte {
	type object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"eTag"`
		VersionID string `json:"versionId"`
	}
	type record struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object object `json:"object"`
		} `json:"s3"`
	}
	ev := struct {
		Records []record `json:"Records"`
	}{Records: []record{}}
	for _, u := range ups {
		var r record
		r.EventName = u.Event
		r.S3.Bucket.Name = u.Bucket
		r.S3.Object = object{Key: url.QueryEscape(u.Key), Size: u.Size, ETag: `"` + u.ETag + `"`, VersionID: u.VersionID}
		ev.Records = append(ev.Records, r)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
