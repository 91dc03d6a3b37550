package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
	"unicode"
)

// writePlot draws three log-log panels — p99 latency, bytes per change per
// sidecar, control-plane peak RSS — against N, delta solid and SotW dashed,
// and writes them as a PNG.
func writePlot(path string, r *report) error {
	const w, h = 1500, 570
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.fill(0, 0, w, h, white)
	c.text(20, 10, fmt.Sprintf("CONTROL PLANE FLEET SIMULATOR  %s  %s", r.start.UTC().Format("2006-01-02"), r.machine), 2, black)
	c.text(20, 34, "ENDPOINTS: "+r.cfg.model.Name(), 1, black)

	var lat, bytes, rss []series
	for _, mode := range r.cfg.modes {
		dash := mode == "sotw"
		for _, sc := range r.cfg.scenarios {
			l := series{label: mode + " " + sc, col: scenarioColor[sc], dash: dash}
			b := l
			for _, n := range r.cfg.ns {
				run := r.find(n, mode)
				if run == nil {
					continue
				}
				s := run.scen[sc]
				l.pts = append(l.pts, point{float64(n), ms(pct(s.lat, 0.99))})
				b.pts = append(b.pts, point{float64(n), float64(median(s.bytes)) / float64(n)})
			}
			lat, bytes = append(lat, l), append(bytes, b)
		}
		m := series{label: mode, col: black, dash: dash}
		for _, n := range r.cfg.ns {
			if run := r.find(n, mode); run != nil {
				m.pts = append(m.pts, point{float64(n), run.peak})
			}
		}
		rss = append(rss, m)
	}
	ns := make([]float64, len(r.cfg.ns))
	for i, n := range r.cfg.ns {
		ns[i] = float64(n)
	}
	panels := []panel{
		{title: "P99 MS UNTIL ALL SIDECARS HAVE IT", series: lat, target: 200, targetLabel: "TARGET 200 MS AT N=1000", yfmt: plainNum},
		{title: "BYTES PER CHANGE PER SIDECAR", series: bytes, yfmt: byteNum},
		{title: "CONTROL PLANE PEAK RSS (MIB)", series: rss, target: 500e6 / (1 << 20), targetLabel: "TARGET 500 MB", yfmt: plainNum},
	}
	for i, p := range panels {
		x0 := 90 + i*490
		p.draw(c, x0, 90, x0+390, 440, ns)
	}
	// Legend.
	x, y := 90, 495
	for _, mode := range r.cfg.modes {
		for _, sc := range r.cfg.scenarios {
			c.line(float64(x), float64(y+7), float64(x+40), float64(y+7), scenarioColor[sc], 3, mode == "sotw")
			c.text(x+50, y, mode+" "+sc, 2, black)
			x += 230
		}
		x, y = 90, y+30
	}
	c.text(1000, 495, "SOLID: DELTA   DASHED: SOTW", 2, black)
	c.text(1000, 525, "X AXIS: N SIDECARS (LOG)", 2, black)

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, c.img); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}

var (
	white         = color.RGBA{255, 255, 255, 255}
	black         = color.RGBA{0, 0, 0, 255}
	grid          = color.RGBA{225, 225, 225, 255}
	red           = color.RGBA{214, 39, 40, 255}
	scenarioColor = map[string]color.RGBA{
		scJoin:   {31, 119, 180, 255},
		scLeave:  {44, 160, 44, 255},
		scConfig: {255, 127, 14, 255},
	}
)

type point struct{ x, y float64 }

type series struct {
	label string
	col   color.RGBA
	dash  bool
	pts   []point
}

type panel struct {
	title       string
	series      []series
	target      float64 // a red horizontal line; 0: none
	targetLabel string
	yfmt        func(float64) string
}

// draw renders the panel in the plot area (x0,y0)-(x1,y1), log scales on
// both axes, x ticks at xs.
func (p panel) draw(c *canvas, x0, y0, x1, y1 int, xs []float64) {
	c.text(x0, y0-30, p.title, 2, black)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for _, pt := range s.pts {
			if pt.y > 0 {
				lo, hi = math.Min(lo, pt.y), math.Max(hi, pt.y)
			}
		}
	}
	if p.target > 0 {
		lo, hi = math.Min(lo, p.target), math.Max(hi, p.target)
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	ylo, yhi := math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if ylo == yhi {
		yhi *= 10
	}
	xlo, xhi := xs[0], xs[0]
	for _, x := range xs {
		xlo, xhi = math.Min(xlo, x), math.Max(xhi, x)
	}
	xlo, xhi = xlo/1.6, xhi*1.6
	px := func(x float64) float64 {
		return float64(x0) + (math.Log(x)-math.Log(xlo))/(math.Log(xhi)-math.Log(xlo))*float64(x1-x0)
	}
	py := func(y float64) float64 {
		return float64(y1) - (math.Log(y)-math.Log(ylo))/(math.Log(yhi)-math.Log(ylo))*float64(y1-y0)
	}
	for v := ylo; v <= yhi*1.001; v *= 10 {
		y := int(py(v))
		c.fill(x0, y, x1, y+1, grid)
		label := p.yfmt(v)
		c.text(x0-8-textWidth(label, 2), y-7, label, 2, black)
	}
	for _, x := range xs {
		xp := int(px(x))
		c.fill(xp, y0, xp+1, y1, grid)
		label := fmt.Sprint(x)
		c.text(xp-textWidth(label, 2)/2, y1+10, label, 2, black)
	}
	c.fill(x0, y0, x0+2, y1+1, black)
	c.fill(x0, y1, x1, y1+2, black)
	if p.target > 0 {
		ty := py(p.target)
		c.line(float64(x0), ty, float64(x1), ty, red, 2, true)
		c.text(x1-textWidth(p.targetLabel, 1)-4, int(ty)-12, p.targetLabel, 1, red)
	}
	for _, s := range p.series {
		var prev *point
		for i := range s.pts {
			pt := s.pts[i]
			if pt.y <= 0 {
				prev = nil
				continue
			}
			x, y := px(pt.x), py(pt.y)
			c.fill(int(x)-4, int(y)-4, int(x)+5, int(y)+5, s.col)
			if prev != nil {
				c.line(px(prev.x), py(prev.y), x, y, s.col, 3, s.dash)
			}
			prev = &pt
		}
	}
}

func plainNum(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", v), "0")
}

func byteNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.0fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fK", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// canvas is a tiny raster with the drawing the plot needs.
type canvas struct{ img *image.RGBA }

func (c *canvas) fill(x0, y0, x1, y1 int, col color.RGBA) {
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c.img.SetRGBA(x, y, col)
		}
	}
}

// line draws from (x0,y0) to (x1,y1), width pixels thick, dashed (8 on, 6
// off) if asked.
func (c *canvas) line(x0, y0, x1, y1 float64, col color.RGBA, width int, dashed bool) {
	length := math.Hypot(x1-x0, y1-y0)
	steps := int(length) + 1
	for i := 0; i <= steps; i++ {
		t := float64(i) / float64(steps)
		if dashed && int(t*length)%14 >= 8 {
			continue
		}
		x, y := int(x0+t*(x1-x0)), int(y0+t*(y1-y0))
		c.fill(x-width/2, y-width/2, x-width/2+width, y-width/2+width, col)
	}
}

// text draws s with its top-left corner at (x,y), each font pixel scale
// pixels wide.
func (c *canvas) text(x, y int, s string, scale int, col color.RGBA) {
	for _, r := range s {
		g, ok := glyphs[unicode.ToUpper(r)]
		if ok {
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
