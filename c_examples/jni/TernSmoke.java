/**
 * TernSmoke: tern from Java through a small JNI shim (tern_jni.c). Loads a model,
 * generates tokens after a prompt with a seeded sampler, prints their ids and text.
 *
 *   java -Djava.library.path=DIR -cp tern_smoke.jar TernSmoke MODEL.gguf [PROMPT] [N] [SEED]
 */
public final class TernSmoke {
    static {
        System.loadLibrary("tern_jni");
    }

    /** The ids of up to nPredict tokens generated after prompt (fewer if the model ends
     *  the text). Throws RuntimeException with tern's message on failure. */
    static native int[] generate(String modelPath, String prompt, int nPredict, long seed);

    /** The text of the given token ids. */
    static native String detokenize(String modelPath, int[] ids);

    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: TernSmoke MODEL.gguf [PROMPT] [N] [SEED]");
            System.exit(2);
        }
        String prompt = args.length > 1 ? args[1] : "Once upon a time";
        int n = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        long seed = args.length > 3 ? Long.parseLong(args[3]) : 42L;
        int[] ids = generate(args[0], prompt, n, seed);
        StringBuilder line = new StringBuilder("java ids:");
        for (int id : ids) {
            line.append(' ').append(id);
        }
        System.out.println(line);
        System.out.println("java text: " + prompt + detokenize(args[0], ids));
    }
}
