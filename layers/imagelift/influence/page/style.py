"""The page's stylesheet and its one small script, both inline: the page is a single file that needs no network.

The script only adds to a page that is complete without it: sort buttons on the headers marked ``data-sort``
and the filter box of a table marked ``data-filter-for``; with scripts off the table reads in its printed order.

The widths the charts are drawn for (:mod:`imagelift.influence.page.svg`) follow from the layout numbers here,
which the stylesheet is built from.
"""

WIDE_FROM_PX = 800
"""Viewport width from which the wide layout (and the wide drawing of each chart) is shown."""
PAGE_PAD_PX = {"narrow": 12, "wide": 20}
CARD_PAD_PX = {"narrow": 12, "wide": 20}
CARD_BORDER_PX = 1
WIDE_CHART_MAX_PX = 760
NARROW_CHART_MAX_PX = 480
"""The narrow drawing is not stretched beyond this, so its text stays below about 18 px on a tablet."""


def chart_gutter_px(layout: str) -> int:
    """CSS px between the viewport's edge and a chart in a card, on one side."""
    return PAGE_PAD_PX[layout] + CARD_PAD_PX[layout] + CARD_BORDER_PX


_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#111827;max-width:1040px;margin:24px auto;
padding:0 @PAGE_WIDE@px;line-height:1.5;background:#f9fafb;-webkit-text-size-adjust:100%;text-size-adjust:100%}
h1{font-size:26px;margin:0 0 4px;line-height:1.25} h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;
padding-bottom:4px;line-height:1.3}
.sub{color:#4b5563;margin:0 0 18px} .card{background:#fff;border:@BORDER@px solid #e5e7eb;border-radius:10px;padding:16px @CARD_WIDE@px;
margin:12px 0} .headline{display:flex;gap:14px;flex-wrap:wrap} .big{flex:1 1 280px}
.big .num{font-size:34px;font-weight:700} .big .rng{color:#374151} .big .what{font-size:14px;color:#4b5563}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:8px 0;border:1px solid #e5e7eb;border-radius:8px;
background:#fff}
table{border-collapse:collapse;width:100%;font-size:14px;background:#fff} th,td{padding:6px 10px;
border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:middle} th{background:#f3f4f6;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap} .warn{background:#fffbeb;
border:1px solid #f59e0b;border-radius:10px;padding:10px 18px;margin:12px 0} .warn li{margin:4px 0} .ok{color:#065f46}
.muted{color:#6b7280;font-size:13px} details{margin:10px 0} summary{cursor:pointer;font-weight:600}
.card>p:first-child{margin-top:0} .card>p:last-child{margin-bottom:0} .narrow-only{display:none}
.files ul{margin:4px 0 0;padding:0;list-style:none} .files li{margin:4px 0}
.files a{font-weight:600;color:#1b6ca8;margin-right:8px}
.chart svg{display:block;margin:0 auto;height:auto} .chart .chart-wide{max-width:@WIDE_MAX@px} .chart .chart-narrow{display:none}
.chart text{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.legend{font-size:14px;color:#374151;margin:6px 0 0} .legend span{display:inline-block;margin-right:14px}
table.wide{min-width:600px} table.products{min-width:820px} table.products td:first-child,table.products th:first-child{position:sticky;left:0;
background:#fff;z-index:1;min-width:150px;max-width:220px;box-shadow:1px 0 0 #e5e7eb}
table.products th:first-child{background:#f3f4f6} .pid{display:block;color:#6b7280;font-size:13px}
th[data-sort] button{font:inherit;color:inherit;background:none;border:0;padding:0;cursor:pointer;text-align:left}
th[data-sort] button::after{content:" \\2195";color:#9ca3af}
th[aria-sort=ascending] button::after{content:" \\2191";color:#111827}
th[aria-sort=descending] button::after{content:" \\2193";color:#111827}
.filter{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin:8px 0}
.filter input[type=search]{font:inherit;font-size:16px;padding:6px 10px;border:1px solid #d1d5db;border-radius:6px;
min-width:0;flex:1 1 220px;max-width:360px}
@media (max-width:@WIDE_BELOW@px){
body{padding:0 @PAGE_NARROW@px;margin:14px auto} .card{padding:12px @CARD_NARROW@px} h1{font-size:22px} .big .num{font-size:30px}
.chart .chart-wide{display:none} .chart .chart-narrow{display:block;max-width:@NARROW_MAX@px} .narrow-only{display:block}
.headline{gap:0 14px}
}
"""
CSS = (
    _CSS.replace("@PAGE_WIDE@", str(PAGE_PAD_PX["wide"]))
    .replace("@PAGE_NARROW@", str(PAGE_PAD_PX["narrow"]))
    .replace("@CARD_WIDE@", str(CARD_PAD_PX["wide"]))
    .replace("@CARD_NARROW@", str(CARD_PAD_PX["narrow"]))
    .replace("@BORDER@", str(CARD_BORDER_PX))
    .replace("@WIDE_MAX@", str(WIDE_CHART_MAX_PX))
    .replace("@NARROW_MAX@", str(NARROW_CHART_MAX_PX))
    .replace("@WIDE_BELOW@", f"{WIDE_FROM_PX - 0.02:.2f}")
)

SCRIPT = """
(function(){
function key(cell,kind){var v=cell.getAttribute('data-value');if(v===null)v=cell.textContent;
if(kind==='num'){var n=parseFloat(v);return isNaN(n)?-Infinity:n;}return v.toLowerCase();}
Array.prototype.forEach.call(document.querySelectorAll('table[data-sortable]'),function(table){
var body=table.tBodies[0],heads=table.tHead.rows[0].cells;
Array.prototype.forEach.call(heads,function(th,col){var kind=th.getAttribute('data-sort');if(!kind)return;
var b=document.createElement('button');b.type='button';while(th.firstChild)b.appendChild(th.firstChild);th.appendChild(b);
b.addEventListener('click',function(){var asc=th.getAttribute('aria-sort')!=='ascending';
Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,c){var x=key(a.cells[col],kind),y=key(c.cells[col],kind);return(x<y?-1:x>y?1:0)*(asc?1:-1);});
rows.forEach(function(r){body.appendChild(r);});});});});
Array.prototype.forEach.call(document.querySelectorAll('[data-filter-for]'),function(box){
var table=document.getElementById(box.getAttribute('data-filter-for'));if(!table)return;box.hidden=false;
var text=box.querySelector('input[type=search]'),flagged=box.querySelector('input[type=checkbox]'),
count=box.querySelector('output'),rows=table.tBodies[0].rows;
function apply(){var q=text.value.trim().toLowerCase(),shown=0;
Array.prototype.forEach.call(rows,function(r){var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&
(!flagged||!flagged.checked||r.hasAttribute('data-flagged'));r.hidden=!ok;if(ok)shown++;});
if(count)count.textContent=shown+' of '+rows.length+' rows shown';}
text.addEventListener('input',apply);if(flagged)flagged.addEventListener('change',apply);apply();});
})();
"""
