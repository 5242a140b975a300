"""English texts used to train the tiny tokenizer and to drive the golden cases.

Every text in this file was written for precis's fixtures; none is copied from a corpus, a
data set or the web. Some texts deliberately contain non-ASCII characters (accents, curly
quotes, an em dash, a ligature) so that normalisation and decoding get exercised.
"""

# --------------------------------------------------------------------------------------------
# Golden cases: (name, text). Ordered from short to long. The last one is longer than the
# 512-token window of T5 once tokenised with the tiny tokenizer.
# --------------------------------------------------------------------------------------------

CASE_SHORT = (
    "The city council approved a new bicycle lane on Main Street after a long public debate "
    "on Tuesday evening."
)

CASE_WEATHER = (
    "A slow storm moved across the northern valley on Sunday, bringing heavy rain, strong wind "
    "and hail the size of marbles. Several roads were closed for hours, and farmers said the "
    "late frost had already damaged much of the apple harvest."
)

CASE_ACCENTS = (
    "At the café in Zürich, the chef served a crème brûlée that critics called “almost "
    "perfect” — a rare compliment. The owner, a naïve newcomer from São Paulo, said she "
    "hadn’t expected the review. “We’re a small place,” she explained, “and our résumé is "
    "short.” Visitors from Kraków, Malmö and Besançon now queue outside before the doors "
    "open at 7:30, and the pâtissier has hired two more cooks."
)

CASE_SCIENCE = (
    "Researchers at a coastal university have built a small underwater robot that follows "
    "the movement of jellyfish without disturbing them. The device uses soft fins and a "
    "quiet pump instead of a propeller, so the animals do not flee when it comes close. "
    "During three weeks of tests in the bay, the robot recorded more than forty hours of "
    "video and measured the temperature and salt of the water every few seconds. The team "
    "hopes the data will explain why large groups of jellyfish appear suddenly near the "
    "shore in some summers and not in others. Fishing crews have complained that the swarms "
    "tear their nets and fill the cooling pipes of power stations. The next version of the "
    "robot will carry a camera that can see in very low light."
)

CASE_BUSINESS = (
    "Shares in a regional grocery chain rose sharply on Thursday after the company reported "
    "that sales in its first quarter were far better than analysts had expected. The chain, "
    "which runs about two hundred stores in small towns, said customers had returned to its "
    "shops after a difficult year in which prices for bread, milk and fresh vegetables "
    "climbed quickly. The chief executive told investors that the company had cut the cost "
    "of its delivery trucks by planning shorter routes and by sharing warehouses with two "
    "local suppliers. She also said the chain would open twelve new stores before the end "
    "of the year, mostly in places where the nearest supermarket is more than half an hour "
    "away by car. Some analysts warned that the good news might not last. Wages are rising, "
    "and larger rivals have started to offer cheaper home delivery in the same towns. Others "
    "pointed out that the chain has very little debt and a loyal group of older customers "
    "who prefer to shop in person. The company plans to pay a slightly larger dividend this "
    "year and to hire about nine hundred new workers, many of them students who want part "
    "time jobs during the summer."
)

CASE_HISTORY = (
    "For nearly three centuries the old stone bridge at the edge of the market town carried "
    "carts, cattle and travellers across the river. It was built by local masons who used "
    "blocks cut from a quarry on the hill above the town, and its five arches were wide "
    "enough to let the spring floods pass beneath them. In the early years a small toll was "
    "collected at a wooden gate on the southern bank. When the railway arrived, the bridge became less important, because goods could "
    "be moved more quickly by train. The toll gate was removed, and for a long time the "
    "bridge was used mainly by farmers and children walking to school. During a severe "
    "winter the river froze, and when the ice broke up it struck the central arch with great "
    "force. Engineers feared that the whole structure might collapse, so the town closed the "
    "bridge and began a long argument about whether to repair it or to build a new one. Some "
    "people wanted a modern concrete bridge that could carry heavy lorries. Others said the "
    "old bridge was part of the history of the town and should be saved at any cost. After "
    "years of meetings and public votes, the council chose a compromise. The old "
    "bridge would be restored for people on foot and on bicycles, and a new road bridge "
    "would be built a little further downstream. Workers numbered every stone before "
    "taking the damaged arch apart. Today the bridge is one of the most photographed "
    "places in the region, and every autumn the town holds a small festival on it to "
    "remember the masons who built it so long ago."
)

# The long case is several connected sections. It is far beyond 512 tokens with the tiny
# tokenizer (the script asserts that).
CASE_LONG = " ".join(
    [
        "The annual report on the health of the northern forests was published this week, "
        "and it paints a mixed picture of the woods that cover almost a third of the province.",
        "On the positive side, the area of forest has grown slightly for the seventh year in a "
        "row. Old farmland that was abandoned in the last century has slowly turned back into "
        "woodland, first with grasses and shrubs, then with birch and pine, and finally with "
        "oak and beech. Volunteers have planted young trees along rivers, where their roots hold "
        "the soil in place and their shade keeps the water cool for fish.",
        "On the negative side, the report found that many older trees are under stress. Dry "
        "summers have become more common, and trees that lack water are less able to defend "
        "themselves against insects. A small beetle that lays its eggs under the bark of spruce "
        "trees has spread quickly through the eastern hills. In some valleys whole slopes of "
        "spruce have turned brown and died within two seasons. Foresters have cut down the "
        "infected trees to slow the spread of the beetle, but the work is expensive and the "
        "bare slopes are easily damaged by heavy rain.",
        "The authors of the report also looked at the animals that live in the forests. The "
        "number of deer has risen, partly because there are fewer hunters than before. Deer eat "
        "the buds and shoots of young trees, and in some places they prevent the forest from "
        "renewing itself. Birds that nest in old trees with holes, such as woodpeckers and owls, "
        "have done well where dead trees are left standing. Bats, which hunt insects at night, "
        "have declined in areas where old buildings and hollow trees have been removed.",
        "Local people were asked how they use the forests. Most said they walk in the woods at "
        "least once a month, and many collect mushrooms, berries or firewood. Mountain bikers "
        "and riders on horseback have become more numerous, and the report notes that some paths "
        "are badly worn. A few landowners complained that visitors leave litter and frighten "
        "their animals, while others have opened small cafés and shops for walkers and earn a "
        "good living from them.",
        "The report makes several recommendations. It suggests planting a wider mix of trees, so "
        "that a single pest or a single dry summer cannot destroy a whole forest. It asks the "
        "province to pay landowners who leave some dead wood in place for birds, insects and "
        "fungi. It proposes better signs and more rangers on the busiest paths, and it calls for "
        "a long study of how deer numbers affect the growth of young trees. Finally, it warns "
        "that the forests will need more care in the coming decades, because the climate is "
        "changing faster than trees can adapt on their own.",
        "The minister responsible for the forests welcomed the report and promised to discuss its "
        "ideas with farmers, hunters, walkers and the timber industry before the end of the year. "
        "Environmental groups said the recommendations were sensible but came too late for the "
        "spruce of the eastern hills. The timber industry said it supported a wider mix of trees "
        "but warned that some of the proposed rules could make it harder to earn money from wood. "
        "Everyone agreed on one point: the forests are changing, and the people who depend on "
        "them will have to change too.",
    ]
)

CASES = [
    ("short", CASE_SHORT),
    ("weather", CASE_WEATHER),
    ("accents", CASE_ACCENTS),
    ("science", CASE_SCIENCE),
    ("business", CASE_BUSINESS),
    ("history", CASE_HISTORY),
    ("long", CASE_LONG),
]

# --------------------------------------------------------------------------------------------
# Strings for the tokenization section: edge cases rather than prose.
# --------------------------------------------------------------------------------------------
TOKENIZATION_STRINGS = [
    "",
    " ",
    "  \n\t  ",
    "Hello, world!",
    "  leading and trailing spaces, and   inner   runs  ",
    "Line one.\nLine two.\r\nLine three.",
    "Café naïve résumé — “curly quotes” and ‘single’ ones, it’s São Paulo’s.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a very long word.",
    "Call 555-0142 at 07:30 on 2026-11-27; pay $1,234.56 or 3.14159 units.",
    "ﬁnal ﬂight ① ½ ＡＢＣ",  # ligatures, circled digit, fraction, full-width: NFKC changes them
    "Unknown symbols: 日本語 😀 ∮",  # characters never seen in training -> <unk>
    "summarize: The city council approved a new bicycle lane.",
]

# Non-English and mixed-script strings, for the tokenizers added after T5 (byte-level BPE spells
# unseen characters as bytes; SentencePiece maps them to <unk>). Kept apart from the list above so
# that the T5 golden files do not change.
MULTILINGUAL_STRINGS = [
    "Ärger über Öl: Straße, Maß und Fuß — déjà vu à Genève.",
    "东京的天气今天很好，我们去公园散步。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 문장도 있습니다.",
    "Ελληνικά και русский текст, עברית ו-العربية.",
    "Emoji 👍🏽 and a family 👨‍👩‍👧, flags 🇳🇴 and a tab\tbetween.",
    "Mixed: Zürich 2026 东京 café 😀 end.",
    "Fill in the <mask> please, and the </s> too.",
]

# --------------------------------------------------------------------------------------------
# Extra training prose for the tokenizer (in addition to the cases above).
# --------------------------------------------------------------------------------------------
TRAINING_EXTRA = [
    "Summaries should be short, accurate and easy to read. A good summary keeps the main facts "
    "of an article, the names of the people involved, the place and the time, and leaves out "
    "the details that only matter to specialists.",
    "The library on the corner of Elm Street reopened on Monday after a renovation that lasted "
    "eighteen months. New windows let in more daylight, the reading room has comfortable chairs, "
    "and children can now borrow games as well as books. The librarian said that more than six "
    "hundred people visited on the first day.",
    "Scientists studying a glacier in the mountains reported that it lost about two metres of "
    "ice during the past summer. They measured the surface with lasers mounted on small drones "
    "and compared the results with photographs taken by hikers a hundred years ago.",
    "A young pianist from a village near the coast won first prize at the national music "
    "competition. She played a sonata that she had practised every morning for a year, and the "
    "judges praised her calm and careful performance. Her teacher, who is eighty-one, watched "
    "from the front row.",
    "The football club announced that its stadium will be rebuilt over the next three seasons. "
    "During the work the team will play its home matches in a smaller ground twenty kilometres "
    "away, and the club will run free buses for supporters on match days.",
    "Doctors at the regional hospital have started a programme that sends nurses to visit "
    "elderly patients at home after an operation. Early results suggest that fewer patients "
    "return to hospital within a month, and most of them say they recover more quickly in "
    "familiar surroundings.",
    "The museum’s new exhibition shows tools, clothes and toys from the nineteenth century. "
    "Visitors can try on a heavy wool coat, turn the handle of an old washing machine and listen "
    "to recordings of songs that workers sang in the mills. The curator said: “History is not "
    "only about kings and wars — it is about ordinary people, too.”",
    "Engineers are testing a ferry that runs on electricity between two islands in the lake. "
    "The batteries are charged at each harbour while passengers get on and off, and the trip "
    "of twelve minutes is quieter and cleaner than on the old diesel boat.",
    "Heavy snow fell overnight in the hills, and schools in several villages stayed closed. "
    "Snow ploughs worked until dawn to clear the main roads, but many side streets were still "
    "blocked at noon. Forecasters expect milder weather and rain by the weekend.",
    "The government published new figures on Wednesday showing that unemployment fell to its "
    "lowest level in ten years. Economists said that the labour market remains strong, although "
    "growth in wages has slowed and many new jobs are temporary or part time.",
    "Residents of an apartment block organised a garden on the roof, where they grow tomatoes, "
    "beans, herbs and flowers. The garden has become a meeting place for neighbours who had "
    "lived next to each other for years without speaking. On summer evenings they share meals "
    "there and watch the sun set over the river.",
    "In Ålesund and Reykjavík, in Lódź and in Córdoba, tourists ask the same questions: where "
    "is the old harbour, which café serves the best coffee, and when does the last bus leave? "
    "Guides answer patiently — most of the time.",
    "Numbers appear in every report: 12 stores, 3.5 per cent, 1,200 workers, 7:30 in the "
    "morning, the year 1998, the 21st century, and prices such as $4.99 or €15. Dates like "
    "2024-05-01 and phone numbers like 555-0199 should survive tokenization intact.",
    "A committee of teachers has proposed that pupils spend one afternoon each week outdoors, "
    "learning about plants, insects, rivers and the weather. Supporters say that children who "
    "play outside concentrate better in class. Critics worry about the cost of extra staff and "
    "about lessons being lost when the weather is bad.",
    "The airline said that its flights would leave on time again after a strike by baggage "
    "handlers ended on Friday. Thousands of travellers had been stuck at the airport for two "
    "days, sleeping on benches and waiting in long queues for information.",
    "Bakers across the country report that the price of flour has doubled since last spring. "
    "Many small bakeries have raised their prices, and some have reduced the number of loaves "
    "they bake each day. Customers say they understand, but they are buying less cake.",
    "The observatory on the hill will open its doors to the public on clear nights during the "
    "autumn. Visitors will be able to look at the moon, the rings of Saturn and distant "
    "clusters of stars through a telescope that was built more than a century ago.",
    "After a long investigation, the river authority found that a factory upstream had released "
    "chemicals into the water for several months. The company has agreed to pay for the clean "
    "up and to install new filters, and it apologised to the fishermen whose catch was lost.",
    "Volunteers repaired the footpath along the cliffs, replacing broken steps and adding a "
    "rope rail on the steepest section. Walkers can now follow the coast for eleven kilometres "
    "from the lighthouse to the harbour, with views of seals and sea birds along the way.",
    "The new software update improves the battery life of older phones, fixes a problem with "
    "the camera and adds a setting that reduces blue light in the evening. Users are advised "
    "to back up their photos and messages before installing it.",
    "Rosé, jalapeño, façade, coöperate, déjà vu, piñata, smörgåsbord and über are words that "
    "English has borrowed from other languages, often keeping their accents. Writers don’t "
    "always agree on whether to keep them – or drop them.",
    "The farmers’ market moved to the square in front of the town hall, where there is more "
    "room for stalls. On Saturday mornings people buy cheese, eggs, honey, bread, fruit and "
    "vegetables directly from the people who produce them.",
    "Translate the sentence, answer the question, summarize the article, and explain the "
    "result in a few words: these are typical instructions for a language model.",
    "Is the count right? Yes! The digits 0, 1, 2, 3, 4, 5, 6, 7, 8 and 9 (all ten of them) "
    "appear here; so do the signs % & * + = / @ # and the quotes ‘like this’ and \"like this\". "
    "Room 46 holds 86 chairs, the bus leaves at 16:45, and ticket 2026/11 costs 36.50.",
]


def training_corpus():
    """All prose the tokenizer is trained on, in a fixed order."""
    texts = [text for _, text in CASES]
    texts += TRAINING_EXTRA
    # TOKENIZATION_STRINGS are deliberately left out: some contain characters that must stay
    # unknown to the tokenizer.
    return texts
