// Command tiles_interop reads the log over HTTP as C2SP tlog-tiles with Go's reference code
// (golang.org/x/mod/sumdb/tlog and sumdb/note, as Debian's golang-golang-x-mod-dev ships
// them) and checks it: the checkpoint's signature, the tree hash from hash tiles, every entry
// of every entry bundle against the level-0 tiles, record (inclusion) proofs and tree
// (consistency) proofs against the checkpoint's root, equality of those proofs with the
// server's own /v1/log proofs, and that tlog's tile paths are the server's.
//
// Built in GOPATH mode against /usr/share/gocode (no module proxy needed); see
// tests/test_tiles.py. Usage:
//
//	tiles_interop -base http://127.0.0.1:8000 -key VERIFIER_KEY -config cases.json
//
// cases.json: {"old_checkpoints": [note, ...], "records": [index, ...], "path_cases": [[L, N, W], ...]}
// (L = -1: an entry bundle). Prints a JSON report; exits 1 naming every failure.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

type cases struct {
	OldCheckpoints []string   `json:"old_checkpoints"`
	Records        []int64    `json:"records"`
	PathCases      [][3]int64 `json:"path_cases"`
}

type report struct {
	Origin         string            `json:"origin"`
	Size           int64             `json:"size"`
	Root           string            `json:"root"`
	LeavesChecked  int64             `json:"leaves_checked"`
	RecordsChecked int               `json:"records_checked"`
	TreesChecked   int               `json:"trees_checked"`
	TilesFetched   int               `json:"tiles_fetched"`
	NewTiles       []string          `json:"new_tiles"`
	Paths          map[string]string `json:"paths"`
	RejectedBad    []string          `json:"rejected_bad"`
	Failures       []string          `json:"failures"`
}

var rep = report{Paths: map[string]string{}, NewTiles: []string{}, RejectedBad: []string{}, Failures: []string{}}

func fail(format string, args ...interface{}) {
	rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...))
}

// ourPath is tlog's path without the height element: C2SP tlog-tiles fixes the height at 8
// and names data tiles "entries" (tlog: tile/8/data/...).
func ourPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", height))
	if strings.HasPrefix(p, "data/") {
		return "tile/entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p
}

func get(url string) ([]byte, *http.Response, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp, err
}

// httpTiles is a tlog.TileReader over the server's /tile/ endpoints. Tile data is kept in
// memory: tlog's TileHashReader authenticates the tiles against the tree hash on every read.
type httpTiles struct {
	base  string
	cache map[tlog.Tile][]byte
}

func (r *httpTiles) Height() int { return height }

func (r *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if data, ok := r.cache[t]; ok {
			out[i] = data
			continue
		}
		body, resp, err := get(r.base + "/" + ourPath(t))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d", ourPath(t), resp.StatusCode)
		}
		if len(body) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("GET %s: %d bytes, want %d", ourPath(t), len(body), t.W*tlog.HashSize)
		}
		rep.TilesFetched++
		r.cache[t] = body
		out[i] = body
	}
	return out, nil
}

func (r *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// openCheckpoint verifies a signed note with the log's key and parses its checkpoint body
// (origin, size, base64 root, then extension lines): tlog.ParseTree takes only go.sum's origin.
func openCheckpoint(msg []byte, verifiers note.Verifiers) (string, tlog.Tree, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return "", tlog.Tree{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint body too short: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", tlog.Tree{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return "", tlog.Tree{}, fmt.Errorf("bad root hash %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], raw)
	return lines[0], tlog.Tree{N: size, Hash: h}, nil
}

func apiHashes(url string) ([]tlog.Hash, error) {
	body, resp, err := get(url)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	var answer struct {
		Hashes []string `json:"hashes"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(answer.Hashes))
	for i, s := range answer.Hashes {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("bad hash %q", s)
		}
		copy(out[i][:], raw)
	}
	return out, nil
}

func sameHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// bundle splits an entry bundle: big-endian uint16 length, then the entry, per entry.
func bundle(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fmt.Errorf("cut inside a length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("cut inside an entry")
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out, nil
}

func main() {
	base := flag.String("base", "", "the log's URL prefix")
	key := flag.String("key", "", "the log's verifier key")
	casesPath := flag.String("config", "", "cases JSON file")
	flag.Parse()
	if err := run(*base, *key, *casesPath); err != nil {
		fail("%v", err)
	}
	out, _ := json.MarshalIndent(rep, "", " ")
	fmt.Println(string(out))
	if len(rep.Failures) > 0 {
		os.Exit(1)
	}
}

func run(base, key, casesPath string) error {
	raw, err := os.ReadFile(casesPath)
	if err != nil {
		return err
	}
	var cs cases
	if err := json.Unmarshal(raw, &cs); err != nil {
		return err
	}
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("verifier key: %v", err)
	}
	verifiers := note.VerifierList(verifier)

	// The checkpoint, as a tlog-tiles client gets it.
	msg, resp, err := get(base + "/checkpoint")
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		return fmt.Errorf("GET /checkpoint: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	origin, tree, err := openCheckpoint(msg, verifiers)
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	rep.Origin, rep.Size, rep.Root = origin, tree.N, base64.StdEncoding.EncodeToString(tree.Hash[:])
	tiles := &httpTiles{base: base, cache: map[tlog.Tile][]byte{}}
	hr := tlog.TileHashReader(tree, tiles)

	// The tree hash from the tiles (TileHashReader authenticates every tile it reads).
	th, err := tlog.TreeHash(tree.N, hr)
	if err != nil {
		return fmt.Errorf("TreeHash from tiles: %v", err)
	}
	if th != tree.Hash {
		fail("tree hash from tiles %x != checkpoint root %x", th, tree.Hash)
	}

	// Every tile a tree of this size publishes (tlog.NewTiles: each full tile and every
	// partial width of the right edge) is served, with the right length.
	for _, t := range tlog.NewTiles(height, 0, tree.N) {
		rep.NewTiles = append(rep.NewTiles, ourPath(t))
		if _, err := tiles.ReadTiles([]tlog.Tile{t}); err != nil {
			fail("NewTiles tile: %v", err)
		}
	}

	// Every entry of every bundle hashes (tlog.RecordHash) to its leaf hash in the
	// authenticated level-0 tiles.
	if tree.N > 0 {
		indexes := make([]int64, tree.N)
		for i := range indexes {
			indexes[i] = tlog.StoredHashIndex(0, int64(i))
		}
		leaves, err := hr.ReadHashes(indexes)
		if err != nil {
			return fmt.Errorf("leaf hashes from tiles: %v", err)
		}
		for n := int64(0); n*256 < tree.N; n++ {
			w := tree.N - n*256
			if w > 256 {
				w = 256
			}
			t := tlog.Tile{H: height, L: -1, N: n, W: int(w)}
			body, resp, err := get(base + "/" + ourPath(t))
			if err != nil || resp.StatusCode != 200 {
				fail("GET %s: %v %v", ourPath(t), err, resp)
				continue
			}
			entries, err := bundle(body)
			if err != nil || int64(len(entries)) != w {
				fail("%s: %d entries (%v), want %d", ourPath(t), len(entries), err, w)
				continue
			}
			for k, e := range entries {
				i := n*256 + int64(k)
				if tlog.RecordHash(e) != leaves[i] {
					fail("entry %d of %s does not hash to leaf %d of the tiles", k, ourPath(t), i)
				}
				rep.LeavesChecked++
			}
		}

		// Record proofs from tiles, checked against the root and equal to the API's.
		for _, i := range cs.Records {
			proof, err := tlog.ProveRecord(tree.N, i, hr)
			if err != nil {
				fail("ProveRecord(%d, %d): %v", tree.N, i, err)
				continue
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, i, leaves[i]); err != nil {
				fail("CheckRecord(%d): %v", i, err)
			}
			ours, err := apiHashes(fmt.Sprintf("%s/v1/log/proof/inclusion?index=%d&size=%d", base, i, tree.N))
			if err != nil {
				fail("API inclusion proof %d: %v", i, err)
			} else if !sameHashes(ours, proof) {
				fail("record proof %d from tiles differs from /v1/log/proof/inclusion", i)
			}
			bad := leaves[i]
			bad[0] ^= 1
			if tlog.CheckRecord(proof, tree.N, tree.Hash, i, bad) == nil {
				fail("CheckRecord(%d) accepted an altered leaf", i)
			}
			rep.RecordsChecked++
		}
		if len(cs.Records) > 0 {
			rep.RejectedBad = append(rep.RejectedBad, "altered leaf")
		}
	}

	// Tree proofs from each older signed checkpoint to this one.
	for _, old := range cs.OldCheckpoints {
		_, oldTree, err := openCheckpoint([]byte(old), verifiers)
		if err != nil {
			fail("old checkpoint: %v", err)
			continue
		}
		if oldTree.N > tree.N {
			fail("old checkpoint of size %d is bigger than %d", oldTree.N, tree.N)
			continue
		}
		// The old tree from the tiles of the old size (its partial tiles are still served).
		oldHash, err := tlog.TreeHash(oldTree.N, tlog.TileHashReader(oldTree, tiles))
		if err != nil || oldHash != oldTree.Hash {
			fail("tree hash of size %d from its tiles: %v", oldTree.N, err)
		}
		proof, err := tlog.ProveTree(tree.N, oldTree.N, hr)
		if err != nil {
			fail("ProveTree(%d, %d): %v", tree.N, oldTree.N, err)
			continue
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, oldTree.N, oldTree.Hash); err != nil {
			fail("CheckTree(%d -> %d): %v", oldTree.N, tree.N, err)
		}
		if oldTree.N > 0 {
			ours, err := apiHashes(fmt.Sprintf("%s/v1/log/proof/consistency?from=%d&to=%d", base, oldTree.N, tree.N))
			if err != nil {
				fail("API consistency proof %d -> %d: %v", oldTree.N, tree.N, err)
			} else if !sameHashes(ours, proof) {
				fail("tree proof %d -> %d from tiles differs from /v1/log/proof/consistency", oldTree.N, tree.N)
			}
		}
		bad := oldTree.Hash
		bad[31] ^= 1
		if oldTree.N > 0 && oldTree.N < tree.N && tlog.CheckTree(proof, tree.N, tree.Hash, oldTree.N, bad) == nil {
			fail("CheckTree(%d -> %d) accepted an altered old root", oldTree.N, tree.N)
		}
		rep.TreesChecked++
	}
	if len(cs.OldCheckpoints) > 0 {
		rep.RejectedBad = append(rep.RejectedBad, "altered old root")
	}

	// A wrong root: TileHashReader must refuse the (honest) tiles.
	wrong := tree
	wrong.Hash[0] ^= 1
	if tree.N > 0 {
		if _, err := tlog.TreeHash(wrong.N, tlog.TileHashReader(wrong, tiles)); err == nil {
			fail("TileHashReader accepted tiles for an altered root")
		} else {
			rep.RejectedBad = append(rep.RejectedBad, "tiles for an altered root: "+err.Error())
		}
	}
	// An altered checkpoint signature or body.
	if _, _, err := openCheckpoint(bytes.Replace(msg, []byte("\n"), []byte("\n\n"), 1), verifiers); err == nil {
		fail("note.Open accepted an altered checkpoint")
	} else {
		rep.RejectedBad = append(rep.RejectedBad, "altered checkpoint: "+err.Error())
	}

	// tlog's tile paths are the server's, and parse back.
	for _, c := range cs.PathCases {
		t := tlog.Tile{H: height, L: int(c[0]), N: c[1], W: int(c[2])}
		goPath := t.Path()
		parsed, err := tlog.ParseTilePath(goPath)
		if err != nil || parsed != t {
			fail("ParseTilePath(%q) = %v, %v", goPath, parsed, err)
		}
		rep.Paths[fmt.Sprintf("%d/%d/%d", c[0], c[1], c[2])] = ourPath(t)
	}
	return nil
}
