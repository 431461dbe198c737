import csv
from faster_whisper.tokenizer import Tokenizer
from audio_models.multilingual import MultilingualWhisper
m = MultilingualWhisper(languages=["es","it","pl","el","bn","ar","am","cs","fi","de"])
tok = Tokenizer(m._model.hf_tokenizer, True, task="transcribe", language="en")
import collections
rows = list(csv.DictReader(open("benchmarks/data/intents_languages/sentences.csv"))) + list(csv.DictReader(open("benchmarks/data/intents_languages_festival/sentences.csv")))
en = [r["text"] for r in csv.DictReader(open("benchmarks/data/intents_eval/sentences.csv"))] if False else []
per = collections.defaultdict(lambda: [0,0,0])
for r in rows:
    t = r["text"]; n = len(tok.encode(" " + t)); p = per[r["language"]]; p[0]+=n; p[1]+=len(t); p[2]+=len(t.split())
import glob, yaml
ex = yaml.safe_load(open("router/intents/training.yaml"))["intents"]
for name, ss in ex.items():
    for t in ss[:40]:
        n = len(tok.encode(" " + t)); p = per["en"]; p[0]+=n; p[1]+=len(t); p[2]+=len(t.split())
extra = {"el": "Θέλω να ακυρώσω το συμβόλαιό μου από τον επόμενο μήνα. Ο λογαριασμός μου είναι λάθος, με χρεώσατε δύο φορές.",
 "ar": "أريد إلغاء اشتراكي من الشهر القادم. الفاتورة خاطئة، لقد خصمتم المبلغ مرتين.",
 "bn": "আমি পরের মাস থেকে আমার সংযোগ বাতিল করতে চাই। আমার বিল ভুল, আপনারা দুবার টাকা কেটেছেন।",
 "am": "ከሚቀጥለው ወር ጀምሮ ምዝገባዬን መሰረዝ እፈልጋለሁ። ሂሳቡ ስህተት ነው፣ ሁለት ጊዜ አስከፍላችሁኛል።",
 "de": "Ich möchte meinen Vertrag ab nächstem Monat kündigen. Die Rechnung ist falsch, Sie haben zweimal abgebucht."}
for l,t in extra.items():
    p = per[l]; p[0]+=len(tok.encode(" "+t)); p[1]+=len(t); p[2]+=len(t.split())
for l,(n,c,w) in per.items(): print(l, f"tokens/word {n/w:.2f} tokens/char {n/c:.3f}")
