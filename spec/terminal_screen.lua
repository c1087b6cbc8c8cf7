-- A small terminal for the specs: feeds text with the control sequences the progress bar uses
-- (\r, \n, ESC[K, ESC[nA) into a grid of lines, wrapping at a width, and gives the lines on
-- screen. What a user would see, so that a spec can say "no line holds a bar and something else".
local T = {}

--- The lines a terminal `width` columns wide shows after `text` (trailing spaces removed).
function T.screen(text, width)
  width = width or math.huge
  local rows, row, col = {{}}, 1, 0
  local function put(ch)
    if col >= width then   -- the terminal wraps: the rest goes on the next row
      row, col = row + 1, 0
      rows[row] = rows[row] or {}
    end
    rows[row][col + 1] = ch
    col = col + 1
  end
  local i = 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == "\r" then
      col, i = 0, i + 1
    elseif c == "\n" then
      row, col, i = row + 1, 0, i + 1
      rows[row] = rows[row] or {}
    elseif c == "\27" then
      local n, final, after = text:match("^%[(%d*)(%a)()", i + 1)
      if final == "K" then
        for k = col + 1, #rows[row] do rows[row][k] = nil end
      elseif final == "A" then
        row = math.max(1, row - (tonumber(n) or 1))
      end
      i = after or (i + 1)
    else
      local ch = text:match("^[%z\1-\127\194-\244][\128-\191]*", i)
      put(ch)
      i = i + #ch
    end
  end
  local lines = {}
  for r = 1, #rows do
    local cells = {}
    for k = 1, #(rows[r] or {}) do cells[k] = rows[r][k] or " " end
    lines[r] = (table.concat(cells):gsub("%s+$", ""))
  end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  return lines
end

return T
