package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	// One colour per contender, in contenderKeys order.
	contenderColor = map[string]color.RGBA{
		"direct": {110, 110, 110, 255},
		"tcp":    {31, 119, 180, 255},
		"uds":    {44, 160, 44, 255},
		"unary":  {148, 103, 189, 255},
		"shm":    {255, 127, 14, 255},
		"slim":   {188, 189, 34, 255},
		"daprd":  {214, 39, 40, 255},
	}
)

// lighter mixes col with white: the p99 bar behind the p50 bar.
func lighter(col color.RGBA) color.RGBA {
	mix := func(v uint8) uint8 { return uint8((int(v) + 2*255) / 3) }
	return color.RGBA{mix(col.R), mix(col.G), mix(col.B), 255}
}

// writePlot draws two rows of bar panels, one panel per operation:
// sequential latency on a log scale (p50 solid, p99 light behind it) and
// throughput at refCallers callers, one bar per contender; written as a PNG.
func writePlot(path string, r *report) error {
	const pw, ph, left, top = 270, 290, 70, 130
	w := max(left+len(r.ops)*pw+20, 900)
	h := top + 2*ph
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.fill(0, 0, w, h, white)
	c.text(20, 12, "SIDECAR VS DIRECT ACCESS VS DAPR", 2, black)
	c.text(20, 36, fmt.Sprintf("%s  %s  %d VCPU  LOAD AT START %s, AT END %s  %d ROUND(S)",
		r.meta.Start.UTC().Format("2006-01-02 15:04 UTC"), r.meta.Machine, r.meta.CPUs, r.meta.LoadStart, r.meta.LoadEnd, r.cfg.rounds), 1, black)
	c.text(20, 52, fmt.Sprintf("TOP: SEQUENTIAL LATENCY IN US (LOG SCALE), P50 SOLID, P99 LIGHT. BOTTOM: CALLS/S WITH %d CONCURRENT CALLERS.", refCallers), 1, black)
	x := 20
	for _, k := range r.cons {
		c.fill(x, 72, x+14, 86, contenderColor[k])
		c.text(x+20, 76, contenderNames[k], 1, black)
		x += 40 + textWidth(contenderNames[k], 1)
	}
	for i, op := range r.ops {
		x0 := left + i*pw
		var p50, p99, tput []float64
		for _, k := range r.cons {
			a := r.agg[op.key][k]
			if a == nil {
				p50, p99, tput = append(p50, 0), append(p99, 0), append(tput, 0)
				continue
			}
			p50, p99, tput = append(p50, a.P50), append(p99, a.P99), append(tput, a.Ops[refCallers])
		}
		c.latencyBars(x0, top, x0+pw-50, top+ph-60, op.name+" US", r.cons, p50, p99)
		c.bars(x0, top+ph, x0+pw-50, top+2*ph-60, fmt.Sprintf("%s CALLS/S @%d", op.name, refCallers), r.cons, tput)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// latencyBars draws one panel in (x0,y0)-(x1,y1) on a log axis: per
// contender a light p99 bar with a narrower solid p50 bar in front, each
// value written above its bar.
func (c *canvas) latencyBars(x0, y0, x1, y1 int, title string, keys []string, p50, p99 []float64) {
	c.text(x0, y0-22, title, 1, black)
	lo, hi := math.Inf(1), 0.0
	for i := range keys {
		if p50[i] > 0 {
			lo, hi = math.Min(lo, p50[i]), math.Max(hi, math.Max(p50[i], p99[i]))
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	elo, ehi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if ehi == elo {
		ehi++
	}
	py := func(v float64) int {
		if v <= 0 {
			return y1
		}
		return y1 - int((math.Log10(v)-elo)/(ehi-elo)*float64(y1-y0))
	}
	for e := elo; e <= ehi; e++ {
		v := math.Pow(10, e)
		y := py(v)
		c.fill(x0, y, x1, y+1, grid)
		l := shortNum(v)
		c.text(x0-6-textWidth(l, 1), y-3, l, 1, black)
	}
	slot := (x1 - x0) / len(keys)
	for i, k := range keys {
		if p50[i] == 0 {
			continue // not measured (no direct row on the in-memory store)
		}
		bx, bw := x0+i*slot+slot/8, slot*3/4
		col := contenderColor[k]
		c.fill(bx, py(p99[i]), bx+bw, y1, lighter(col))
		c.fill(bx+bw/5, py(p50[i]), bx+bw-bw/5, y1, col)
		l99, l50 := shortNum(p99[i]), shortNum(p50[i])
		c.text(bx+bw/2-textWidth(l99, 1)/2, py(p99[i])-10, l99, 1, black)
		c.text(bx+bw/2-textWidth(l50, 1)/2, py(p50[i])-10, l50, 1, black)
	}
	c.fill(x0, y0, x0+1, y1+1, black)
	c.fill(x0, y1, x1, y1+1, black)
}

// bars draws one panel in (x0,y0)-(x1,y1): a bar per contender on a
// linear axis from 0, its value written above it.
func (c *canvas) bars(x0, y0, x1, y1 int, title string, keys []string, v []float64) {
	c.text(x0, y0-22, title, 1, black)
	hi := 0.0
	for _, x := range v {
		hi = math.Max(hi, x)
	}
	step := niceStep(hi / 4)
	top := step * math.Ceil(hi/step)
	if top == 0 {
		top = 1
	}
	py := func(x float64) int { return y1 - int(x/top*float64(y1-y0)) }
	for t := 0.0; t <= top*1.001; t += step {
		y := py(t)
		c.fill(x0, y, x1, y+1, grid)
		l := shortNum(t)
		c.text(x0-6-textWidth(l, 1), y-3, l, 1, black)
	}
	slot := (x1 - x0) / len(keys)
	for i, k := range keys {
		if v[i] == 0 {
			continue
		}
		bx, bw := x0+i*slot+slot/8, slot*3/4
		c.fill(bx, py(v[i]), bx+bw, y1, contenderColor[k])
		l := shortNum(v[i])
		c.text(bx+bw/2-textWidth(l, 1)/2, py(v[i])-10, l, 1, black)
	}
	c.fill(x0, y0, x0+1, y1+1, black)
	c.fill(x0, y1, x1, y1+1, black)
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fK", v/1e3)
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "K"
	}
	return fmt.Sprintf("%.0f", v)
}

// canvas is a small raster with the drawing the plot needs.
type canvas struct{ img *image.RGBA }

func (c *canvas) fill(x0, y0, x1, y1 int, col color.RGBA) {
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.img.SetRGBA(x, y, col)
		}
	}
}

// text draws s with its top-left corner at (x,y), each font pixel scale
// pixels wide.
func (c *canvas) text(x, y int, s string, scale int, col color.RGBA) {
	for _, r := range s {
		if g, ok := glyphs[unicode.ToUpper(r)]; ok {
			for gy, row := range g {
				for gx, ch := range row {
					if ch == '#' {
						c.fill(x+gx*scale, y+gy*scale, x+(gx+1)*scale, y+(gy+1)*scale, col)
					}
				}
			}
		}
		x += 6 * scale
	}
}

func textWidth(s string, scale int) int { return len([]rune(s))*6*scale - scale }
