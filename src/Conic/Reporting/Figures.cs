using SkiaSharp;

namespace Conic.Reporting;

/// <summary>PNG figures: line charts (ScottPlot) and captioned grids of images and heat maps (SkiaSharp).</summary>
static class Figures
{
    /// <summary>One chart with a line per series over a shared x axis; series with no values are left out.</summary>
    public static byte[] LineChart(string title, string xLabel, string yLabel, IReadOnlyList<(string Name, double[] X, double[] Y)> series)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (name, x, y) in series.Where(s => s.X.Length > 0))
        {
            var line = plot.Add.Scatter(x, y);
            line.LegendText = name;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (series.Count(s => s.X.Length > 0) > 1) plot.ShowLegend();
        return plot.GetImageBytes(640, 360, ScottPlot.ImageFormat.Png);
    }

    /// <summary>Points in the plane, one colour per group, with a legend.</summary>
    public static byte[] Scatter(string title, IReadOnlyList<(string Name, double[] X, double[] Y)> groups)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (name, x, y) in groups)
        {
            var points = plot.Add.ScatterPoints(x, y);
            points.LegendText = name;
            points.MarkerSize = 4;
        }
        plot.Title(title);
        plot.HideAxesAndGrid();
        if (groups.Count > 1) plot.ShowLegend(ScottPlot.Edge.Right);
        return plot.GetImageBytes(760, 560, ScottPlot.ImageFormat.Png);
    }

    /// <summary>A cell: a picture and the caption under it.</summary>
    public sealed record Cell(SKBitmap Picture, string Caption);

    /// <summary>Rows of cells, each picture scaled to <paramref name="cellSize"/> pixels (nearest neighbour, so pixels stay visible), a title above each row.</summary>
    public static byte[] Grid(IReadOnlyList<(string Title, IReadOnlyList<Cell> Cells)> rows, int cellSize = 84)
    {
        const int pad = 6, caption = 16, title = 18;
        int columns = rows.Max(r => r.Cells.Count);
        int width = pad + columns * (cellSize + pad);
        int height = rows.Count * (title + cellSize + caption + pad) + pad;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var sampling = new SKPaint();
        int y = pad;
        foreach (var (rowTitle, cells) in rows)
        {
            canvas.DrawText(rowTitle, pad, y + 13, font, ink);
            y += title;
            for (int c = 0; c < cells.Count; c++)
            {
                int x = pad + c * (cellSize + pad);
                using var image = SKImage.FromBitmap(cells[c].Picture);
                canvas.DrawImage(image, SKRect.Create(x, y, cellSize, cellSize), new SKSamplingOptions(SKFilterMode.Nearest), sampling);
                canvas.DrawText(Fit(cells[c].Caption, cellSize, font), x, y + cellSize + 13, font, ink);
            }
            y += cellSize + caption + pad;
        }
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    static string Fit(string text, int width, SKFont font)
    {
        while (text.Length > 1 && font.MeasureText(text) > width) text = text[..^1];
        return text;
    }

    /// <summary>An image from uint8 pixels [C, H, W] (1 or 3 channels).</summary>
    public static SKBitmap Picture(byte[] pixels, int channels, int height, int width)
    {
        var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            byte r = pixels[i], g = channels == 3 ? pixels[plane + i] : r, b = channels == 3 ? pixels[2 * plane + i] : r;
            bitmap.SetPixel(i % width, i / width, new SKColor(r, g, b));
        }
        return bitmap;
    }

    /// <summary>
    /// A class map (row-major class indices) in distinct colours: VOC's palette (index 0 black, then the bits of the
    /// index spread over red, green and blue), and 255 (not scored) light grey.
    /// </summary>
    public static SKBitmap ClassMap(byte[] classes, int height, int width)
    {
        var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int i = 0; i < classes.Length; i++) bitmap.SetPixel(i % width, i / width, ClassColor(classes[i]));
        return bitmap;
    }

    static SKColor ClassColor(byte index)
    {
        if (index == 255) return new SKColor(224, 224, 192);
        int r = 0, g = 0, b = 0;
        for (int bit = 0, c = index; bit < 8; bit++, c >>= 3)
        {
            r |= (c & 1) << (7 - bit);
            g |= ((c >> 1) & 1) << (7 - bit);
            b |= ((c >> 2) & 1) << (7 - bit);
        }
        return new SKColor((byte)r, (byte)g, (byte)b);
    }

    /// <summary>A heat map from values in [0, 1] (row-major, height × width): dark blue, through red, to yellow.</summary>
    public static SKBitmap HeatMap(float[] values, int height, int width)
    {
        var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int i = 0; i < values.Length; i++) bitmap.SetPixel(i % width, i / width, HeatColor(values[i]));
        return bitmap;
    }

    static readonly (float At, SKColor Color)[] Heat =
    {
        (0f, new SKColor(0, 0, 40)), (0.35f, new SKColor(90, 20, 140)), (0.65f, new SKColor(220, 50, 40)),
        (0.85f, new SKColor(250, 160, 20)), (1f, new SKColor(255, 250, 160)),
    };

    static SKColor HeatColor(float value)
    {
        value = Math.Clamp(value, 0f, 1f);
        int k = 1;
        while (k < Heat.Length - 1 && value > Heat[k].At) k++;
        var (a, ca) = Heat[k - 1];
        var (b, cb) = Heat[k];
        float t = (value - a) / (b - a);
        byte Mix(byte x, byte y) => (byte)Math.Round(x + (y - x) * t);
        return new SKColor(Mix(ca.Red, cb.Red), Mix(ca.Green, cb.Green), Mix(ca.Blue, cb.Blue));
    }
}
