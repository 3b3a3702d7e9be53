package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bytedance/sonic"

	"github.com/artemis-go/artemis/core"
)

// The replication services.json answer, as WriteServices streams it:
//
//	{"responseStatus":{...},"services":[
//	{"serviceId":"a","instances":[
//	{instance}
//	,{instance}
//	]}
//	,{"serviceId":"b","instances":[
//	...
//	]}
//	]}
//
// It is plain JSON for any client (the Java contract's answer), and a node
// reads it a line at a time: every line is one instance (a leading comma
// aside) or a line of the frame. readServices also takes the same answer
// formatted any other way, decoding it as a stream.

var (
	syncHead     = []byte(`{"responseStatus":{"status":"success","errorCode":"success","message":""},"services":[` + "\n")
	syncTail     = []byte("]}\n")
	svcHeadStart = []byte(`{"serviceId":`)
	svcHeadEnd   = []byte(`,"instances":[` + "\n")
	svcEnd       = []byte("]}\n")
)

// WriteServices streams every lease of reg (unfiltered: what replication
// copies) to w in the format above, one service at a time.
func WriteServices(w io.Writer, reg *core.Registry) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(syncHead)
	first := true
	var err error
	reg.Leases(nil, func(id string, leases []core.LeaseInfo) {
		if err != nil {
			return
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.Write(svcHeadStart)
		idJSON, _ := json.Marshal(id)
		bw.Write(idJSON)
		bw.Write(svcHeadEnd)
		for i, l := range leases {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.Write(l.Record.JSON())
			if _, err = bw.Write([]byte{'\n'}); err != nil {
				return
			}
		}
		_, err = bw.Write(svcEnd)
	})
	if err != nil {
		return err
	}
	bw.Write(syncTail)
	return bw.Flush()
}

// syncBatch is how many copied instances are registered at once.
const syncBatch = 1000

// maxSyncLine bounds one line of a services answer (one instance is at
// most a few hundred KB; see core.MaxFieldLen and MaxMetadataBytes).
const maxSyncLine = 4 << 20

// SyncResult is what a startup sync copied.
type SyncResult struct {
	From      string // the peer copied from; "" when none was
	Instances int
	Took      time.Duration
}

// ErrNoPeerUp is returned by Sync when no peer was up within SyncTimeout.
var ErrNoPeerUp = errors.New("cluster: no peer was up to copy the registry from")

// Sync copies the registry from the first peer that is up, this node's
// zone first, retrying every second until Config.SyncTimeout. With no
// peers it returns at once with nothing copied.
func (c *Cluster) Sync(ctx context.Context) (SyncResult, error) {
	start := time.Now()
	if !c.Configured() {
		return SyncResult{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SyncTimeout)
	defer cancel()
	var lastErr error
	for {
		order, reachedAll := c.syncOrder()
		if len(order) == 0 && reachedAll {
			// Every peer answered and none is up: the cluster is starting
			// as a whole, and no node has anything to copy.
			return SyncResult{Took: time.Since(start)}, nil
		}
		for _, p := range order {
			n, err := c.copyFrom(ctx, p)
			if err == nil {
				return SyncResult{From: p, Instances: n, Took: time.Since(start)}, nil
			}
			lastErr = err
			c.log.Warn("cluster: cannot copy the registry", "peer", p, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ErrNoPeerUp
			}
			return SyncResult{Took: time.Since(start)}, fmt.Errorf("%w: %v", ErrNoPeerUp, lastErr)
		case <-time.After(time.Second):
		}
	}
}

// syncOrder lists the peers that are up now (asked directly), those of
// this node's zone first, then in configured order, and whether every peer
// answered.
func (c *Cluster) syncOrder() (order []string, reachedAll bool) {
	var same, other []string
	reachedAll = true
	for _, p := range c.peerList() {
		a, err := c.pollStatus(p.url)
		if err != nil {
			reachedAll = false
			continue
		}
		if a.NodeStatus.Status != StatusUp {
			continue
		}
		if strings.EqualFold(a.NodeStatus.Node.Zone.ZoneID, c.cfg.Zone) {
			same = append(same, p.url)
		} else {
			other = append(other, p.url)
		}
	}
	return append(same, other...), reachedAll
}

// copyFrom registers every instance of the peer's services.json.
func (c *Cluster) copyFrom(ctx context.Context, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/replication/registry/services.json", nil)
	if err != nil {
		return 0, err
	}
	c.authorize(req)
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return readServices(resp.Body, c.reg)
}

// readServices registers, with fresh leases and without replicating them,
// every instance of a services answer read from r, syncBatch at a time:
// one goroutine decodes while another registers the previous batch.
func readServices(r io.Reader, reg *core.Registry) (int, error) {
	ins := newInstanceBatch(reg)
	err := readServicesInto(r, ins)
	return ins.finish(), err
}

func readServicesInto(r io.Reader, ins *instanceBatch) error {
	br := bufio.NewReaderSize(r, 256<<10)
	if head, _ := br.Peek(len(syncHead)); !bytes.Equal(head, syncHead) {
		// Not the line format: decode the answer as a stream.
		return decodeServices(br, ins)
	}
	br.Discard(len(syncHead))
	inService := false
	for {
		line, err := readLine(br)
		if err != nil {
			return fmt.Errorf("cannot read the services answer: %w", err)
		}
		line = bytes.TrimPrefix(line, []byte{','})
		switch {
		case bytes.Equal(line, svcEnd) && inService:
			inService = false
			continue
		case bytes.Equal(line, syncTail):
			return nil
		case bytes.HasPrefix(line, svcHeadStart) && bytes.HasSuffix(line, svcHeadEnd):
			inService = true
			continue
		case !inService:
			return fmt.Errorf("cannot read the services answer: unexpected line %.100q", line)
		}
		var inst core.Instance
		if err := sonic.Unmarshal(bytes.TrimSpace(line), &inst); err != nil { // copies: line is reused
			return fmt.Errorf("cannot decode a copied instance: %w", err)
		}
		if err := ins.add(&inst); err != nil {
			return err
		}
	}
}

// readLine returns the next line, newline included; it is valid until the
// next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(buf) <= maxSyncLine {
			line, err = br.ReadSlice('\n')
			buf = append(buf, line...)
		}
		if len(buf) > maxSyncLine {
			return nil, fmt.Errorf("a line longer than %d bytes", maxSyncLine)
		}
		line = buf
	}
	return line, err
}

// decodeServices reads {"responseStatus":...,"services":[{"serviceId",
// "instances":[...]}...]} as a stream of tokens, one instance at a time.
func decodeServices(r io.Reader, ins *instanceBatch) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	sawServices := false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		if key != "services" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		sawServices = true
		if err := expectDelim(dec, '['); err != nil {
			return err
		}
		for dec.More() {
			if err := decodeService(dec, ins); err != nil {
				return err
			}
		}
		if err := expectDelim(dec, ']'); err != nil {
			return err
		}
	}
	if !sawServices {
		return errors.New("cannot read the services answer: no services in it")
	}
	return nil
}

func decodeService(dec *json.Decoder, ins *instanceBatch) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		if key != "instances" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := expectDelim(dec, '['); err != nil {
			return err
		}
		for dec.More() {
			var inst core.Instance
			if err := dec.Decode(&inst); err != nil {
				return fmt.Errorf("cannot decode a copied instance: %w", err)
			}
			if err := ins.add(&inst); err != nil {
				return err
			}
		}
		if err := expectDelim(dec, ']'); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return fmt.Errorf("cannot read the services answer: %w", err)
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fmt.Errorf("cannot read the services answer: got %v; want %v", t, want)
	}
	return nil
}

// instanceBatch registers copied instances syncBatch at a time, on a
// goroutine of its own, while the reader decodes the next batch (at most
// two batches wait).
type instanceBatch struct {
	reg   *core.Registry
	insts []*core.Instance
	work  chan []*core.Instance
	done  chan struct{}
	total int // written by the registering goroutine; read after done
}

func newInstanceBatch(reg *core.Registry) *instanceBatch {
	b := &instanceBatch{reg: reg, insts: make([]*core.Instance, 0, syncBatch), work: make(chan []*core.Instance, 2), done: make(chan struct{})}
	go b.register()
	return b
}

func (b *instanceBatch) register() {
	defer close(b.done)
	var failed []core.FailedInstance
	for batch := range b.work {
		failed = b.reg.Register(batch, failed[:0])
		b.total += len(batch) - len(failed)
	}
}

func (b *instanceBatch) add(inst *core.Instance) error {
	b.insts = append(b.insts, inst)
	if len(b.insts) >= syncBatch {
		b.work <- b.insts
		b.insts = make([]*core.Instance, 0, syncBatch)
	}
	return nil
}

// finish registers what is left, stops the goroutine and returns how many
// instances were registered.
func (b *instanceBatch) finish() int {
	if len(b.insts) > 0 {
		b.work <- b.insts
	}
	close(b.work)
	<-b.done
	return b.total
}
