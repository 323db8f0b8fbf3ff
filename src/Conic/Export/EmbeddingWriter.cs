using System.Globalization;
using System.Text;
using static TorchSharp.torch;

namespace Conic.Export;

/// <summary>Embeddings as CSV (an image's name or index, then its vector) and as NumPy .npy (float32 [n, d]).</summary>
public static class EmbeddingWriter
{
    /// <param name="embeddings">float32 [n, d] on the CPU.</param>
    /// <param name="names">One name per row (file names for image folders); null writes the row index.</param>
    public static void WriteCsv(string path, Tensor embeddings, IReadOnlyList<string>? names)
    {
        var (rows, columns, values) = Flatten(embeddings);
        if (names != null && names.Count != rows) throw new ArgumentException($"{names.Count} names for {rows} embeddings");
        string temporary = path + ".tmp";
        using (var writer = new StreamWriter(temporary, append: false, new UTF8Encoding(false)))
        {
            writer.WriteLine(string.Join(",", new[] { "image" }.Concat(Enumerable.Range(0, columns).Select(c => $"f{c}"))));
            var line = new StringBuilder();
            for (int r = 0; r < rows; r++)
            {
                line.Clear();
                line.Append(names == null ? r.ToString(CultureInfo.InvariantCulture) : Quote(names[r]));
                for (int c = 0; c < columns; c++) line.Append(',').Append(values[r * columns + c].ToString("R", CultureInfo.InvariantCulture));
                writer.WriteLine(line);
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>NumPy format 1.0 of a float32 tensor of any shape: magic, a header dict padded to 64 bytes, then the row-major data.</summary>
    public static void WriteNpy(string path, Tensor tensor)
    {
        var cpu = tensor.to_type(ScalarType.Float32).cpu().contiguous();
        var values = cpu.data<float>().ToArray();
        string shape = cpu.dim() == 1 ? $"({cpu.shape[0]},)" : $"({string.Join(", ", cpu.shape)})";
        string dictionary = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        int unpadded = 10 + dictionary.Length + 1;
        string header = dictionary + new string(' ', (64 - unpadded % 64) % 64) + "\n";
        string temporary = path + ".tmp";
        using (var stream = File.Create(temporary))
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
            writer.Write((ushort)header.Length);
            writer.Write(Encoding.ASCII.GetBytes(header));
            foreach (float value in values) writer.Write(value);
        }
        File.Move(temporary, path, overwrite: true);
    }

    static (int Rows, int Columns, float[] Values) Flatten(Tensor embeddings)
    {
        if (embeddings.dim() != 2) throw new ArgumentException($"embeddings must be [n, d], got [{string.Join(", ", embeddings.shape)}]");
        var cpu = embeddings.to_type(ScalarType.Float32).cpu().contiguous();
        return ((int)cpu.shape[0], (int)cpu.shape[1], cpu.data<float>().ToArray());
    }

    static string Quote(string name) =>
        name.IndexOfAny(new[] { ',', '"', '\n', '\r' }) < 0 ? name : "\"" + name.Replace("\"", "\"\"") + "\"";
}
