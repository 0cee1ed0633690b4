'use strict'
// Porcupine history view: draws the data embedded in #porcupine-data as SVG.
// Layout: one section per partition (a row per client), then one section of
// annotations (a row per client and per tag). Time runs left to right, warped
// so that every box is wide enough for its text while keeping time order.
;(function () {
  const SVG_NS = 'http://www.w3.org/2000/svg'
  const ROW_H = 28
  const BOX_H = 20
  const SECTION_H = 28
  const PAD = 10
  const MIN_GAP = 14
  // Boxes widen to fit their text up to this; longer text is clipped (full text on hover).
  const MAX_FIT_TEXT_W = 360
  // Browsers stop painting very wide SVGs; wider timelines are scaled down (zoom buttons).
  const MAX_CANVAS_W = 30000
  const TEXT_PAD = 8
  const POINT_W = 10
  const LP_STEP = 5
  const OP_FONT = '12px Menlo, "Courier New", monospace'
  const LABEL_FONT = '12px Helvetica, Arial, sans-serif'

  const data = JSON.parse(document.getElementById('porcupine-data').textContent)
  const partitions = data.Partitions || []
  const annotations = data.Annotations || []
  const selected = partitions.map(() => 0)
  const measureCtx = document.createElement('canvas').getContext('2d')
  const tooltip = document.getElementById('tooltip')
  let onlyBad = false
  let layout = null
  let zoom = null // null: automatic (1, or less when the timeline would be too wide)

  function textWidth(text, font) {
    measureCtx.font = font
    return measureCtx.measureText(text).width
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG_NS, tag)
    for (const k of Object.keys(attrs || {})) {
      node.setAttribute(k, attrs[k])
    }
    if (parent) parent.appendChild(node)
    return node
  }

  function esc(s) {
    return String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'})[c])
  }

  // ---- time warp: x position of every timestamp --------------------------------
  function computeX() {
    const stamps = new Set()
    const constraints = []
    for (const p of partitions) {
      for (const op of p.History) {
        stamps.add(op.Start)
        stamps.add(op.End)
        const w = Math.min(MAX_FIT_TEXT_W, textWidth(op.Description, OP_FONT) + 2 * TEXT_PAD)
        constraints.push({start: op.Start, end: op.End, width: w})
      }
    }
    for (const a of annotations) {
      stamps.add(a.Start)
      stamps.add(a.End)
      const w = Math.min(MAX_FIT_TEXT_W, textWidth(a.Description, LABEL_FONT) + 2 * TEXT_PAD)
      constraints.push({start: a.Start, end: a.End, width: a.Start === a.End ? w + POINT_W : w})
    }
    const sorted = [...stamps].sort((a, b) => a - b)
    const next = new Map()
    for (let i = 0; i + 1 < sorted.length; i++) next.set(sorted[i], sorted[i + 1])
    // A zero-length item needs its room before the next timestamp.
    const byEnd = new Map()
    let tail = 0
    for (const c of constraints) {
      let end = c.end
      if (end === c.start) {
        if (!next.has(c.start)) {
          tail = Math.max(tail, c.width)
          continue
        }
        end = next.get(c.start)
      }
      if (!byEnd.has(end)) byEnd.set(end, [])
      byEnd.get(end).push(c)
    }
    const x = new Map()
    let prev = null
    for (const t of sorted) {
      let pos = prev === null ? PAD : x.get(prev) + MIN_GAP
      for (const c of byEnd.get(t) || []) pos = Math.max(pos, x.get(c.start) + c.width)
      x.set(t, pos)
      prev = t
    }
    const width = (prev === null ? PAD : x.get(prev)) + Math.max(tail, MIN_GAP) + PAD
    const scale = zoom ?? Math.min(1, MAX_CANVAS_W / width)
    if (scale !== 1) {
      for (const [t, pos] of x) x.set(t, PAD + (pos - PAD) * scale)
    }
    document.getElementById('zoom-level').textContent = `${Math.round(scale * 100)}%`
    return {x, width: PAD + (width - PAD) * scale, scale}
  }

  // ---- sections and rows ----------------------------------------------------------
  function partitionLabel(i) {
    const p = partitions[i]
    const n = p.History.length
    const lin = p.PartialLinearizations[selected[i]] || []
    if (p.Linearizable) return `partition ${i}: linearizable (${n} ops)`
    if (p.Result === 'Unknown') return `partition ${i}: unknown (the check timed out), longest prefix found ${lin.length} of ${n} ops`
    return `partition ${i}: NOT linearizable, longest prefix ${lin.length} of ${n} ops`
  }

  function buildSections() {
    const sections = []
    // Failing partitions first, so the first error is in view without scrolling down.
    const rank = {Illegal: 0, Unknown: 1, Ok: 2}
    const order = partitions.map((p, i) => i).sort((a, b) =>
      (rank[partitions[a].Result] ?? 1) - (rank[partitions[b].Result] ?? 1) || a - b)
    for (const i of order) {
      const p = partitions[i]
      if (onlyBad && p.Result !== 'Illegal') continue
      const clients = [...new Set(p.History.map((op) => op.ClientId))].sort((a, b) => a - b)
      sections.push({kind: 'partition', index: i, bad: p.Result === 'Illegal',
        rows: clients.map((c) => ({key: c, label: `client ${c}`}))})
    }
    if (annotations.length > 0) {
      const clientRows = [...new Set(annotations.filter((a) => !a.Tag).map((a) => a.ClientId))].sort((a, b) => a - b)
      const tagRows = [...new Set(annotations.filter((a) => a.Tag).map((a) => a.Tag))].sort()
      sections.push({kind: 'annotations', bad: false,
        rows: [...clientRows.map((c) => ({key: 'c' + c, label: `client ${c}`})),
          ...tagRows.map((t) => ({key: 't' + t, label: t}))]})
    }
    return sections
  }

  // ---- drawing ----------------------------------------------------------------------
  function render() {
    const labelsDiv = document.getElementById('labels')
    const timelineDiv = document.getElementById('timeline')
    labelsDiv.textContent = ''
    timelineDiv.textContent = ''
    const {x, width, scale} = computeX()
    const sections = buildSections()
    let labelW = 80
    for (const s of sections) for (const r of s.rows) labelW = Math.max(labelW, textWidth(r.label, LABEL_FONT) + 2 * PAD)
    let height = 0
    for (const s of sections) height += SECTION_H + s.rows.length * ROW_H
    height = Math.max(height, ROW_H)
    const labels = svg('svg', {width: labelW, height}, labelsDiv)
    const canvas = svg('svg', {width, height, id: 'canvas'}, timelineDiv)
    layout = {x, width, scale, labelW, sections: [], rowY: new Map()}
    let y = 0
    for (const s of sections) {
      const top = y
      const h = SECTION_H + s.rows.length * ROW_H
      svg('rect', {x: 0, y: top, width, height: h, class: 'section-bg' + (s.bad ? ' bad' : '')}, canvas)
      svg('rect', {x: 0, y: top, width: labelW, height: h, class: 'section-bg' + (s.bad ? ' bad' : '')}, labels)
      const title = s.kind === 'partition' ? partitionLabel(s.index) : 'annotations'
      // In the label column, which does not scroll sideways; the text may run over the
      // (empty) title row of the timeline.
      const tl = svg('text', {x: PAD, y: top + SECTION_H / 2, class: 'section-label' + (s.bad ? ' bad' : '')}, labels)
      tl.textContent = title
      if (s.kind === 'partition') tl.setAttribute('id', `title-${s.index}`)
      svg('line', {x1: 0, x2: width, y1: top, y2: top, class: 'divider'}, canvas)
      svg('line', {x1: 0, x2: labelW, y1: top, y2: top, class: 'divider'}, labels)
      const rowY = new Map()
      s.rows.forEach((r, k) => {
        const ry = top + SECTION_H + k * ROW_H
        rowY.set(r.key, ry)
        const t = svg('text', {x: PAD, y: ry + ROW_H / 2, class: 'row-label'}, labels)
        t.textContent = r.label
      })
      layout.sections.push({...s, top, height: h, rowY})
      y += h
    }
    for (const s of layout.sections) {
      if (s.kind === 'partition') drawPartition(canvas, s)
      else drawAnnotations(canvas, s)
    }
  }

  function opBox(s, op) {
    const x0 = layout.x.get(op.Start)
    let x1 = layout.x.get(op.End)
    if (x1 - x0 < POINT_W) x1 = x0 + POINT_W
    const y0 = s.rowY.get(op.ClientId) + (ROW_H - BOX_H) / 2
    return {x0, x1, y0, y1: y0 + BOX_H}
  }

  function drawPartition(canvas, s) {
    const p = partitions[s.index]
    const group = svg('g', {id: `partition-${s.index}`}, canvas)
    const lin = p.PartialLinearizations[selected[s.index]] || []
    const failedId = p.Result === 'Illegal' ? (p.FailedAt[selected[s.index]] ?? -1) : -1
    const position = new Map(lin.map((step, k) => [step.Index, k]))
    const boxes = []
    p.History.forEach((op, id) => {
      const b = opBox(s, op)
      boxes[id] = b
      let cls = 'op'
      if (position.has(id)) cls += ' in-lin'
      else if (id === failedId) cls += ' failed'
      else if (!p.Linearizable) cls += ' outside'
      const rect = svg('rect', {x: b.x0, y: b.y0, width: b.x1 - b.x0, height: BOX_H, rx: 4, class: cls,
        'data-partition': s.index, 'data-op': id}, group)
      // A nested <svg> clips the text to its box.
      const clip = svg('svg', {x: b.x0, y: b.y0, width: Math.max(0, b.x1 - b.x0 - 2), height: BOX_H}, group)
      const t = svg('text', {x: TEXT_PAD, y: BOX_H / 2,
        class: 'op-text' + (cls.includes('outside') ? ' outside' : '')}, clip)
      t.textContent = op.Description
      rect.addEventListener('mouseenter', (ev) => showOpTooltip(ev, s.index, id))
      rect.addEventListener('mousemove', moveTooltip)
      rect.addEventListener('mouseleave', hideTooltip)
      rect.addEventListener('click', () => selectFor(s.index, id))
    })
    // Linearization points, in order, each inside its box and after the previous one.
    let last = -Infinity
    const points = []
    for (const step of lin) {
      const b = boxes[step.Index]
      const lp = Math.min(Math.max(b.x0 + 3, last + LP_STEP), b.x1 - 3)
      last = lp
      points.push(`${lp},${(b.y0 + b.y1) / 2}`)
      svg('line', {x1: lp, x2: lp, y1: b.y0 - 2, y2: b.y1 + 2, class: 'lp-mark'}, group)
    }
    if (points.length > 1) svg('polyline', {points: points.join(' '), class: 'lp-line'}, group)
    if (failedId >= 0) {
      const b = boxes[failedId]
      const lp = Math.min(Math.max(b.x0 + 3, last + LP_STEP), b.x1 - 3)
      svg('line', {x1: lp, x2: lp, y1: b.y0 - 4, y2: b.y1 + 4, class: 'lp-fail'}, group)
      if (points.length > 0) {
        const [px, py] = points.at(-1).split(',')
        svg('line', {x1: px, y1: py, x2: lp, y2: (b.y0 + b.y1) / 2, class: 'lp-fail'}, group)
      }
    }
  }

  function drawAnnotations(canvas, s) {
    const all = svg('g', {id: 'annotations'}, canvas)
    annotations.forEach((a, k) => {
      // One group per annotation (its shape and its label), so a test can read both from the DOM.
      const group = svg('g', {class: 'annot-item', 'data-annotation': k, 'data-tag': a.Tag}, all)
      const ry = s.rowY.get(a.Tag ? 't' + a.Tag : 'c' + a.ClientId)
      const y0 = ry + (ROW_H - BOX_H) / 2
      const x0 = layout.x.get(a.Start)
      const bg = a.BackgroundColor || '#e0e0e0'
      let node
      let textX
      if (a.Start === a.End) {
        const cx = x0 + POINT_W / 2
        const cy = y0 + BOX_H / 2
        node = svg('polygon', {points: `${cx},${y0} ${x0 + POINT_W},${cy} ${cx},${y0 + BOX_H} ${x0},${cy}`,
          fill: bg, class: 'annot annot-point', 'data-annotation': k}, group)
        textX = x0 + POINT_W + 3
      } else {
        const x1 = layout.x.get(a.End)
        node = svg('rect', {x: x0, y: y0, width: Math.max(2, x1 - x0), height: BOX_H, rx: 3, fill: bg,
          class: 'annot', 'data-annotation': k}, group)
        textX = x0 + TEXT_PAD
      }
      const parent = a.Start === a.End ? group
        : svg('svg', {x: x0, y: y0, width: Math.max(0, layout.x.get(a.End) - x0 - 2), height: BOX_H}, group)
      const t = svg('text', {x: a.Start === a.End ? textX : TEXT_PAD, y: a.Start === a.End ? y0 + BOX_H / 2 : BOX_H / 2,
        class: 'annot-text', fill: a.TextColor || '#111'}, parent)
      t.textContent = a.Description
      node.addEventListener('mouseenter', (ev) => showAnnotationTooltip(ev, k))
      node.addEventListener('mousemove', moveTooltip)
      node.addEventListener('mouseleave', hideTooltip)
    })
  }

  // ---- interaction ------------------------------------------------------------------
  function selectFor(pi, id) {
    const best = partitions[pi].Largest[String(id)]
    if (best === undefined || best === selected[pi]) return
    selected[pi] = best
    render()
  }

  function row(k, v, cls) {
    return `<div><span class="k">${esc(k)}:</span> <span class="v ${cls || ''}">${esc(v)}</span></div>`
  }

  function opTooltipHtml(pi, id) {
    const p = partitions[pi]
    const op = p.History[id]
    const lin = p.PartialLinearizations[selected[pi]] || []
    const failedId = p.Result === 'Illegal' ? (p.FailedAt[selected[pi]] ?? -1) : -1
    let html = `<div class="v"><b>${esc(op.Description)}</b></div>`
    html += row('client', op.ClientId) + row('call', seconds(op.StartSeconds)) +
      row('return', seconds(op.EndSeconds)) + row('took', duration(op.EndSeconds - op.StartSeconds))
    if (op.Metadata) html += row('metadata', op.Metadata)
    const k = lin.findIndex((step) => step.Index === id)
    const before = (j) => (j === 0 ? p.InitialState : lin[j - 1].StateDescription)
    if (k >= 0) {
      html += row('step', `${k + 1} of ${lin.length}` + (p.Linearizable ? '' : ' (partial linearization)'))
      html += row('state before', before(k)) + row('state after', lin[k].StateDescription)
    } else if (id === failedId) {
      html += `<div class="bad">linearization failed here: after the ${lin.length} operations of the longest prefix, no pending operation can be linearized before this one returns</div>`
      html += row('state before', before(lin.length))
    } else {
      html += '<div>not part of the partial linearization shown'
      html += p.Largest[String(id)] === undefined ? '; no linearizable prefix contains it' : '; click to show the longest one that does'
      html += '</div>'
    }
    return html
  }

  function showOpTooltip(ev, pi, id) {
    ev.target.classList.add('hover')
    tooltip.innerHTML = opTooltipHtml(pi, id)
    tooltip.style.display = 'block'
    moveTooltip(ev)
  }

  function annotationTooltipHtml(k) {
    const a = annotations[k]
    let html = `<div><b>${esc(a.Description)}</b></div>`
    if (a.Details) html += `<div>${esc(a.Details)}</div>`
    html += row(a.Tag ? 'tag' : 'client', a.Tag || a.ClientId)
    html += a.Start === a.End ? row('at', seconds(a.StartSeconds))
      : row('from', seconds(a.StartSeconds)) + row('to', seconds(a.EndSeconds)) +
        row('lasted', duration(a.EndSeconds - a.StartSeconds))
    return html
  }

  function showAnnotationTooltip(ev, k) {
    tooltip.innerHTML = annotationTooltipHtml(k)
    tooltip.style.display = 'block'
    moveTooltip(ev)
  }

  // Times are shown as seconds since the earliest timestamp of the view (its start).
  function seconds(s) {
    return `${s.toFixed(3)} s`
  }

  function duration(d) {
    return d < 1 ? `${(d * 1000).toFixed(1)} ms` : seconds(d)
  }

  function moveTooltip(ev) {
    const maxX = window.scrollX + document.documentElement.clientWidth - tooltip.offsetWidth - 8
    tooltip.style.left = Math.max(0, Math.min(ev.pageX + 12, maxX)) + 'px'
    tooltip.style.top = (ev.pageY + 14) + 'px'
  }

  function hideTooltip(ev) {
    ev.target.classList.remove('hover')
    tooltip.style.display = 'none'
  }

  // Scroll so that the first non-linearizable partition and its failing operation are in view.
  function jumpToFirstError(vertical = true) {
    const pi = partitions.findIndex((p) => p.Result === 'Illegal')
    if (pi < 0) return false
    const s = layout.sections.find((sec) => sec.kind === 'partition' && sec.index === pi)
    if (!s) return false
    const failedId = p0failed(pi)
    const bar = document.getElementById('bar').offsetHeight
    const view = document.getElementById('view')
    if (vertical) window.scrollTo(0, view.offsetTop + s.top - bar - 4)
    if (failedId >= 0) {
      const scroller = document.getElementById('scroller')
      scroller.scrollLeft = Math.max(0, layout.x.get(partitions[pi].History[failedId].Start) - scroller.clientWidth / 2)
    }
    return true
  }

  function p0failed(pi) {
    const p = partitions[pi]
    return p.Result === 'Illegal' ? (p.FailedAt[selected[pi]] ?? -1) : -1
  }

  // "#click=P:ID" clicks operation ID of partition P; "#show=P:ID" then pins its tooltip;
  // "#annot=K" pins the tooltip of annotation K (all used by the headless Chromium checks).
  function applyHash() {
    const click = /click=(\d+):(\d+)/.exec(window.location.hash)
    if (click) {
      const rect = opRect(Number(click[1]), Number(click[2]))
      if (rect) rect.dispatchEvent(new MouseEvent('click', {bubbles: true}))
    }
    const annot = /annot=(\d+)/.exec(window.location.hash)
    const node = annot && document.querySelector(`.annot[data-annotation="${annot[1]}"]`)
    if (node) {
      const r = node.getBoundingClientRect()
      tooltip.innerHTML = annotationTooltipHtml(Number(annot[1]))
      tooltip.style.display = 'block'
      moveTooltip({pageX: r.left + window.scrollX, pageY: r.bottom + window.scrollY})
    }
    const m = /show=(\d+):(\d+)/.exec(window.location.hash)
    if (!m) return
    const pi = Number(m[1])
    const id = Number(m[2])
    const rect = opRect(pi, id)
    if (!rect) return
    const r = rect.getBoundingClientRect()
    rect.classList.add('hover')
    tooltip.innerHTML = opTooltipHtml(pi, id)
    tooltip.style.display = 'block'
    moveTooltip({pageX: r.left + window.scrollX, pageY: r.bottom + window.scrollY})
  }

  function opRect(pi, id) {
    return document.querySelector(`rect[data-partition="${pi}"][data-op="${id}"]`)
  }

  function summarize() {
    const summary = document.getElementById('summary')
    const bad = partitions.filter((p) => p.Result === 'Illegal').length
    const unknown = partitions.filter((p) => p.Result === 'Unknown').length
    if (partitions.length === 0) {
      summary.textContent = annotations.length > 0 ? 'no operations (annotations only)' : 'empty history'
    } else if (bad === 0 && unknown > 0) {
      summary.textContent = `unknown: the check timed out on ${unknown} of ${partitions.length} partition(s), no violation found`
    } else if (bad === 0) {
      summary.textContent = `linearizable: all ${partitions.length} partition(s)`
      summary.className = 'good'
    } else {
      summary.textContent = `NOT linearizable: ${bad} of ${partitions.length} partition(s) fail` +
        (unknown > 0 ? ` (${unknown} timed out)` : '')
      summary.className = 'bad'
    }
    document.getElementById('jump').classList.toggle('hidden-link', bad === 0)
  }

  document.getElementById('jump').addEventListener('click', (ev) => {
    ev.preventDefault()
    jumpToFirstError()
  })
  function setZoom(factor) {
    const scroller = document.getElementById('scroller')
    const center = (scroller.scrollLeft + scroller.clientWidth / 2) / layout.scale
    zoom = Math.max(0.01, Math.min(4, layout.scale * factor))
    render()
    scroller.scrollLeft = center * layout.scale - scroller.clientWidth / 2
  }

  document.getElementById('zoom-in').addEventListener('click', () => setZoom(2))
  document.getElementById('zoom-out').addEventListener('click', () => setZoom(0.5))
  document.getElementById('only-bad').addEventListener('change', (ev) => {
    onlyBad = ev.target.checked
    render()
  })
  summarize()
  render()
  // On load only scroll sideways to the failing operation: its partition is drawn first.
  // (A vertical scroll at load also leaves headless Chromium's screenshot blank.)
  jumpToFirstError(false)
  applyHash()
  document.body.setAttribute('data-rendered', 'true')
})()
