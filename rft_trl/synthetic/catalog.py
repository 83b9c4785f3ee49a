"""The bundled world: value domains and 50 tools as plain literals, and `default_world`.

Some values deliberately reuse words of the response boilerplate ("action", "input", "answer",
"request", "need", "call", "final answer", "thought"), so that token identity or rarity alone
cannot tell a reasoning token from a boilerplate one.
"""

from __future__ import annotations

import random

from rft_trl.synthetic.world import Domain, Param, ToolSpec, World


def _choice(name: str, values: str) -> Domain:
    """A choice domain from "a|b|c"."""
    return Domain(name=name, kind="choice", values=tuple(values.split("|")))


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        _choice(
            "city",
            "Paris|Tokyo|New York|San Francisco|Berlin|Cairo|Lima|Oslo|Sydney|Mumbai|Toronto|"
            "Rome|Madrid|Seoul|Nairobi|Boston|Denver|Austin|Dublin|Prague|Lisbon|Vienna|"
            "Chicago|Buenos Aires|Cape Town|Mexico City|Hong Kong|Kyoto|Bangkok|Istanbul|"
            "Helsinki|Zurich|Athens|Warsaw|Reykjavik|Santiago|Bogota|Vancouver|Seattle|Miami",
        ),
        _choice(
            "country",
            "France|Japan|Brazil|Canada|Kenya|Norway|Peru|India|Egypt|Germany|Mexico|Italy|"
            "Spain|Chile|Vietnam|Australia|Ireland|Portugal|Greece|Finland|Morocco|Iceland|"
            "Thailand|Argentina|Poland|Turkey|New Zealand|South Korea",
        ),
        _choice(
            "language",
            "English|French|Spanish|German|Japanese|Italian|Portuguese|Korean|Arabic|Hindi|"
            "Dutch|Swedish|Turkish|Greek|Polish|Chinese",
        ),
        _choice("currency", "USD|EUR|JPY|GBP|CAD|AUD|CHF|INR|BRL|MXN|SEK|NOK|KRW|ZAR|NZD"),
        _choice("coin", "bitcoin|ethereum|solana|cardano|dogecoin|litecoin|polkadot|ripple"),
        _choice(
            "stock", "AAPL|MSFT|GOOG|AMZN|TSLA|NVDA|META|NFLX|IBM|ORCL|INTC|AMD|UBER|SHOP|SONY"
        ),
        _choice("temp_unit", "celsius|fahrenheit|kelvin"),
        _choice(
            "measure_unit",
            "km|miles|meters|feet|kg|pounds|liters|gallons|ounces|grams|inches|centimeters",
        ),
        _choice("travel_mode", "driving|walking|cycling|transit"),
        _choice(
            "cuisine",
            "Italian|Thai|Mexican|Indian|Japanese|Greek|French|Korean|Ethiopian|Lebanese|"
            "Vietnamese|Spanish|vegan",
        ),
        _choice(
            "movie_genre",
            "action|comedy|drama|horror|thriller|romance|documentary|animation|mystery|western|"
            "fantasy|musical",
        ),
        _choice(
            "music_genre",
            "jazz|rock|hip hop|classical|blues|reggae|electronic|folk|country|soul|metal|lo-fi",
        ),
        _choice(
            "topic",
            "climate|space travel|machine learning|elections|football|startups|healthcare|"
            "renewable energy|action|input|answer|request|need|call|final answer|thought|"
            "tool use|user research|quantum computing|housing market|ocean science|"
            "public health",
        ),
        _choice(
            "word",
            "need|request|answer|input|call|action|thought|final|based|help|bright|swift|"
            "ancient|fragile|harvest|journey|resilient|vivid|candid|meadow|tool|user|result|"
            "step",
        ),
        _choice(
            "phrase",
            "good morning|where is the station|I need help|call me later|thank you very much|"
            "the answer is yes|see you tomorrow|how much does this cost|"
            "please send the request|what time is it|I would like a coffee|the final answer|"
            "happy birthday|take the next action",
        ),
        _choice(
            "person",
            "Alice Martin|Bob Chen|Carla Diaz|David Kim|Emma Novak|Farid Haddad|Grace Okafor|"
            "Hiro Tanaka|Ines Duarte|Jamal Wright|Kira Ivanova|Liam Murphy|Maya Patel|"
            "Noah Fischer|Olga Petrova|Pablo Reyes",
        ),
        _choice(
            "email",
            "alice.martin@example.com|bob@acme.io|carla.diaz@mail.net|david.kim@example.org|"
            "emma@novak.dev|farid.h@example.com|grace@okafor.co|hiro.tanaka@example.jp|"
            "ines@duarte.pt|jamal.w@example.com|team@startup.io|support@shop.example",
        ),
        _choice(
            "subject",
            "project update|meeting request|call notes|final answer|need input|budget review|"
            "action items|quarterly report|travel plans|invoice question|team lunch|"
            "contract draft",
        ),
        _choice(
            "event_title",
            "team meeting|action review|input session|dentist appointment|project kickoff|"
            "call with client|yoga class|lunch with Maya|budget planning|design review",
        ),
        _choice(
            "reminder",
            "call mom|buy milk|answer emails|submit request|water the plants|renew passport|"
            "pay rent|book the flight|return library books|take medicine",
        ),
        _choice(
            "product",
            "laptop stand|wireless mouse|running shoes|coffee maker|"
            "noise cancelling headphones|desk lamp|yoga mat|water bottle|phone charger|"
            "backpack|action camera|smart watch|electric kettle",
        ),
        _choice(
            "store",
            "Downtown|Westfield|Riverside|Northgate|Central Plaza|Harbor Point|Maple Street",
        ),
        _choice(
            "restaurant",
            "Golden Dragon|Casa Verde|The Green Fork|Blue Lagoon Grill|Spice Route|"
            "Bella Napoli|Sakura House|Taco Loco",
        ),
        _choice(
            "dish",
            "margherita pizza|pad thai|beef tacos|chicken curry|sushi platter|caesar salad|"
            "veggie burger|ramen|falafel wrap|lasagna",
        ),
        _choice(
            "ingredient",
            "eggs|milk|spinach|chicken|tomatoes|rice|tofu|mushrooms|garlic|lentils|salmon|"
            "avocado|cheese|potatoes",
        ),
        _choice(
            "food",
            "banana|oatmeal|almonds|greek yogurt|brown rice|salmon|broccoli|apple|"
            "peanut butter|chickpeas",
        ),
        _choice(
            "team",
            "Red Hawks|Blue Sharks|Green Giants|River City FC|Northern Lights|"
            "Thunder Bay United|Golden Eagles|Coastal Kings",
        ),
        _choice(
            "song",
            "Midnight Train|Summer Rain|Lost in the City|Final Call|Silver Lining|Open Road|"
            "Echoes|Neon Dreams|The Answer|Input Output",
        ),
        _choice(
            "artist",
            "Nova Lane|The Quiet Hours|Marco Bell|Luna Park|Static Bloom|Jade River|"
            "The Action Heroes",
        ),
        _choice(
            "movie",
            "The Last Voyage|Silent Harbor|Call of the Deep|Final Request|Night Shift|"
            "Glass Garden|The Long Answer|Northern Star|Broken Compass",
        ),
        _choice(
            "author",
            "Jane Austen|Leo Tolstoy|Octavia Butler|Haruki Murakami|Toni Morrison|"
            "Chinua Achebe|Ursula Le Guin|Italo Calvino",
        ),
        _choice(
            "job_title",
            "data analyst|nurse|software engineer|call center agent|graphic designer|"
            "accountant|teacher|electrician|product manager|chef",
        ),
        _choice(
            "place_type",
            "cafe|pharmacy|gym|library|gas station|hospital|park|bakery|museum|supermarket",
        ),
        _choice("airport", "JFK|LAX|CDG|HND|LHR|FRA|SFO|ORD|DXB|SIN|SYD|GRU|YYZ|MAD|FCO"),
        _choice(
            "month",
            "January|February|March|April|May|June|July|August|September|October|November|December",
        ),
        _choice(
            "playlist",
            "road trip|morning run|focus time|final answer mix|rainy day|late night|dinner party",
        ),
        _choice(
            "image_query",
            "mountain sunset|red bicycle|city skyline|call box|snowy forest|old lighthouse",
        ),
        Domain("date", "date", low=2024, high=2026),
        Domain("time", "time"),
        Domain("tracking", "code", prefix="1Z", digits=8),
        Domain("url", "code", prefix="https://news.example.com/story/", digits=5),
        Domain("amount", "int", low=5, high=5000),
        Domain("days", "int", low=1, high=14),
        Domain("nights", "int", low=1, high=10),
        Domain("guests", "int", low=1, high=8),
        Domain("quantity", "int", low=1, high=6),
        Domain("percent", "int", low=10, high=25),
        Domain("split", "int", low=2, high=6),
        Domain("limit", "int", low=3, high=20),
        Domain("year", "int", low=1975, high=2024),
        Domain("holiday_year", "int", low=2024, high=2027),
        Domain("principal", "int", low=1000, high=500000, step=500),
        Domain("loan_years", "int", low=1, high=30),
        Domain("rate", "number", low=1.5, high=9.5, step=0.25),
        Domain("bill", "number", low=10, high=300, step=0.5),
        Domain("measure", "number", low=0.5, high=500, step=0.5),
        Domain("bool", "bool"),
        # result-only domains
        _choice("weather", "sunny|cloudy|rainy|windy|snowy|foggy|partly cloudy|stormy"),
        Domain("temperature", "int", low=-15, high=38),
        Domain("aqi", "int", low=10, high=300),
        Domain("price", "number", low=1, high=900, step=0.01),
        Domain("fx_rate", "number", low=0.01, high=150, step=0.0001),
        Domain("minutes", "int", low=5, high=600),
        Domain("count", "int", low=0, high=40),
        Domain("population", "int", low=300000, high=150000000, step=1000),
        Domain("calories", "int", low=20, high=600),
        Domain("score", "int", low=0, high=6),
        Domain("rating", "number", low=1, high=5, step=0.1),
        _choice("status", "in transit|delivered|out for delivery|awaiting pickup|delayed"),
        _choice("traffic_level", "light|moderate|heavy|very heavy"),
        _choice("availability", "in stock|low stock|out of stock"),
        _choice(
            "definition",
            "a strong wish or necessity|something asked for|a reply or solution|"
            "data put into a system|to contact by phone|the process of doing something|"
            "an idea formed by thinking|coming at the end|full of light",
        ),
        _choice("utc_offset", "UTC-8|UTC-5|UTC+0|UTC+1|UTC+2|UTC+3|UTC+5:30|UTC+9|UTC+10"),
        _choice("capital", "Paris|Tokyo|Brasilia|Ottawa|Nairobi|Oslo|Lima|New Delhi|Cairo|Berlin"),
        _choice(
            "headline", "markets rally|new study released|talks resume|record heat|team wins title"
        ),
        _choice("detected_language", "English|French|Spanish|German|Italian|Portuguese"),
    )
}


def _req(name: str, domain: str, array: bool = False) -> Param:
    return Param(name=name, domain=domain, required=True, array=array)


def _opt(name: str, domain: str, phrase: str, phrase_false: str = "") -> Param:
    return Param(name=name, domain=domain, required=False, phrase=phrase, phrase_false=phrase_false)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "get_weather",
        "Get the current weather for a city.",
        (_req("city", "city"), _opt("unit", "temp_unit", "in {unit}")),
        (
            "check the weather in {city}",
            "tell me the current weather in {city}",
            "find out how the weather is in {city}",
        ),
        ("the current weather in {city}", "how the weather is in {city}"),
        (("temperature", "temperature"), ("condition", "weather")),
        "it is {condition} in {city} at {temperature} degrees",
    ),
    ToolSpec(
        "get_forecast",
        "Get a multi-day weather forecast for a city.",
        (_req("city", "city"), _req("days", "days"), _opt("unit", "temp_unit", "in {unit}")),
        (
            "get the {days} day forecast for {city}",
            "tell me the weather forecast for {city} for the next {days} days",
        ),
        ("the {days} day forecast for {city}", "the weather forecast in {city}"),
        (("high", "temperature"), ("outlook", "weather")),
        "the forecast for {city} is mostly {outlook} with highs around {high}",
    ),
    ToolSpec(
        "get_air_quality",
        "Get the air quality index of a city.",
        (_req("city", "city"),),
        ("check the air quality in {city}", "tell me how clean the air is in {city}"),
        ("the air quality in {city}",),
        (("aqi", "aqi"),),
        "the air quality index in {city} is {aqi}",
    ),
    ToolSpec(
        "convert_currency",
        "Convert an amount of money from one currency to another.",
        (
            _req("amount", "amount"),
            _req("from_currency", "currency"),
            _req("to_currency", "currency"),
        ),
        (
            "convert {amount} {from_currency} to {to_currency}",
            "tell me how much {amount} {from_currency} is in {to_currency}",
        ),
        ("{amount} {from_currency} in {to_currency}", "the converted amount in {to_currency}"),
        (("result", "price"),),
        "{amount} {from_currency} is {result} {to_currency}",
    ),
    ToolSpec(
        "get_exchange_rate",
        "Get the exchange rate between two currencies.",
        (_req("base", "currency"), _req("target", "currency")),
        ("get the exchange rate from {base} to {target}", "tell me the {base} to {target} rate"),
        ("the {base} to {target} exchange rate",),
        (("rate", "fx_rate"),),
        "one {base} buys {rate} {target}",
    ),
    ToolSpec(
        "get_stock_price",
        "Get the latest stock price for a ticker symbol.",
        (_req("symbol", "stock"),),
        ("look up the stock price of {symbol}", "tell me what {symbol} is trading at"),
        ("the current price of {symbol}", "the latest {symbol} quote"),
        (("price", "price"),),
        "{symbol} is trading at {price} USD",
    ),
    ToolSpec(
        "get_crypto_price",
        "Get the current price of a cryptocurrency.",
        (_req("coin", "coin"), _opt("currency", "currency", "in {currency}")),
        ("check the price of {coin}", "tell me what {coin} costs right now"),
        ("the price of {coin}",),
        (("price", "price"),),
        "{coin} costs {price}",
    ),
    ToolSpec(
        "calculate_loan",
        "Calculate the monthly payment of a loan.",
        (_req("principal", "principal"), _req("rate", "rate"), _req("years", "loan_years")),
        (
            "calculate the monthly payment on a {principal} loan at {rate} percent over {years} years",
            "work out my payment for borrowing {principal} at {rate} percent for {years} years",
        ),
        (
            "the monthly payment for a {principal} loan",
            "the payment on this loan over {years} years",
        ),
        (("monthly_payment", "price"),),
        "the monthly payment is {monthly_payment}",
    ),
    ToolSpec(
        "calculate_tip",
        "Calculate the tip for a restaurant bill.",
        (
            _req("bill_amount", "bill"),
            _req("percent", "percent"),
            _opt("split", "split", "split between {split} people"),
        ),
        (
            "calculate a {percent} percent tip on a bill of {bill_amount}",
            "work out the tip for {bill_amount} at {percent} percent",
        ),
        ("the tip on a bill of {bill_amount}", "a {percent} percent tip"),
        (("tip", "price"),),
        "the tip comes to {tip}",
    ),
    ToolSpec(
        "search_flights",
        "Search for flights between two airports on a date.",
        (
            _req("origin", "airport"),
            _req("destination", "airport"),
            _req("date", "date"),
            _opt("passengers", "guests", "for {passengers} passengers"),
        ),
        (
            "find flights from {origin} to {destination} on {date}",
            "search for a flight from {origin} to {destination} leaving {date}",
        ),
        ("flights from {origin} to {destination} on {date}", "a flight to {destination}"),
        (("cheapest_price", "price"), ("flights_found", "count")),
        "there are {flights_found} flights from {origin} to {destination}, the cheapest at {cheapest_price}",
    ),
    ToolSpec(
        "book_hotel",
        "Book a hotel room in a city.",
        (
            _req("city", "city"),
            _req("check_in", "date"),
            _req("nights", "nights"),
            _opt("guests", "guests", "for {guests} guests"),
        ),
        (
            "book a hotel in {city} from {check_in} for {nights} nights",
            "reserve a room in {city} checking in {check_in} for {nights} nights",
        ),
        ("a hotel room in {city} for {nights} nights", "a place to stay in {city}"),
        (("total_price", "price"), ("rating", "rating")),
        "your hotel in {city} is booked for {total_price} with a rating of {rating}",
    ),
    ToolSpec(
        "rent_car",
        "Rent a car in a city.",
        (_req("city", "city"), _req("pickup_date", "date"), _req("days", "days")),
        (
            "rent a car in {city} from {pickup_date} for {days} days",
            "get me a rental car in {city} on {pickup_date} for {days} days",
        ),
        ("a rental car in {city}", "a car for {days} days in {city}"),
        (("daily_price", "price"),),
        "a car in {city} costs {daily_price} per day",
    ),
    ToolSpec(
        "get_train_times",
        "List train departures between two cities on a date.",
        (_req("origin_city", "city"), _req("destination_city", "city"), _req("date", "date")),
        (
            "find trains from {origin_city} to {destination_city} on {date}",
            "show the train times from {origin_city} to {destination_city} for {date}",
        ),
        ("trains from {origin_city} to {destination_city}", "the train schedule for {date}"),
        (("departures", "count"), ("duration_minutes", "minutes")),
        "there are {departures} trains from {origin_city} to {destination_city}, each taking about {duration_minutes} minutes",
    ),
    ToolSpec(
        "get_directions",
        "Get directions between two places.",
        (
            _req("origin", "city"),
            _req("destination", "city"),
            _opt("mode", "travel_mode", "by {mode}"),
        ),
        (
            "get directions from {origin} to {destination}",
            "tell me how to get from {origin} to {destination}",
        ),
        ("directions from {origin} to {destination}", "the route to {destination}"),
        (("duration_minutes", "minutes"),),
        "the trip from {origin} to {destination} takes {duration_minutes} minutes",
    ),
    ToolSpec(
        "get_traffic",
        "Get current traffic conditions in a city.",
        (_req("city", "city"),),
        ("check the traffic in {city}", "tell me how bad traffic is in {city}"),
        ("the traffic in {city}",),
        (("level", "traffic_level"),),
        "traffic in {city} is {level}",
    ),
    ToolSpec(
        "get_time_zone",
        "Get the time zone of a city.",
        (_req("city", "city"),),
        ("find the time zone of {city}", "tell me which time zone {city} is in"),
        ("the time zone of {city}",),
        (("utc_offset", "utc_offset"),),
        "{city} is in {utc_offset}",
    ),
    ToolSpec(
        "translate_text",
        "Translate text into another language.",
        (
            _req("text", "phrase"),
            _req("target_language", "language"),
            _opt("source_language", "language", "from {source_language}"),
        ),
        ("translate {text} into {target_language}", "say {text} in {target_language}"),
        ("a {target_language} translation of {text}", "the translation into {target_language}"),
        (("confidence", "rating"),),
        "here is {text} in {target_language}, with confidence {confidence}",
    ),
    ToolSpec(
        "detect_language",
        "Detect the language of a text.",
        (_req("text", "phrase"),),
        ("detect the language of {text}", "tell me which language {text} is written in"),
        ("the language of {text}",),
        (("language", "detected_language"),),
        "{text} looks like {language}",
    ),
    ToolSpec(
        "lookup_word",
        "Look up the definition of a word.",
        (_req("word", "word"),),
        ("define the word {word}", "look up what {word} means"),
        ("the meaning of {word}", "a definition of {word}"),
        (("definition", "definition"),),
        "{word} means {definition}",
    ),
    ToolSpec(
        "find_synonyms",
        "Find synonyms of a word.",
        (_req("word", "word"), _opt("limit", "limit", "with at most {limit} results")),
        ("find synonyms for {word}", "give me other words for {word}"),
        ("synonyms of {word}",),
        (("found", "count"),),
        "there are {found} synonyms for {word}",
    ),
    ToolSpec(
        "search_restaurants",
        "Search restaurants in a city by cuisine.",
        (
            _req("city", "city"),
            _req("cuisine", "cuisine"),
            _opt("max_results", "limit", "showing up to {max_results} places"),
        ),
        (
            "find {cuisine} restaurants in {city}",
            "search for a good {cuisine} place to eat in {city}",
        ),
        ("{cuisine} restaurants in {city}", "somewhere to eat in {city}"),
        (("found", "count"), ("top_rating", "rating")),
        "I found {found} {cuisine} restaurants in {city}, the best rated {top_rating}",
    ),
    ToolSpec(
        "order_food",
        "Order a dish from a restaurant.",
        (_req("restaurant", "restaurant"), _req("dish", "dish"), _req("quantity", "quantity")),
        (
            "order {quantity} {dish} from {restaurant}",
            "get me {quantity} {dish} delivered from {restaurant}",
        ),
        ("an order of {dish} from {restaurant}", "{quantity} {dish}"),
        (("total", "price"), ("eta_minutes", "minutes")),
        "your {dish} from {restaurant} costs {total} and arrives in {eta_minutes} minutes",
    ),
    ToolSpec(
        "search_recipes",
        "Find recipes that use some ingredients.",
        (
            _req("ingredients", "ingredient", array=True),
            _opt("cuisine", "cuisine", "in {cuisine} style"),
        ),
        ("find recipes with {ingredients}", "suggest something to cook with {ingredients}"),
        ("recipes using {ingredients}", "a dish to cook with {ingredients}"),
        (("found", "count"),),
        "there are {found} recipes with {ingredients}",
    ),
    ToolSpec(
        "get_nutrition",
        "Get nutrition facts for a food.",
        (_req("food", "food"),),
        ("get the nutrition facts for {food}", "tell me how many calories are in {food}"),
        ("the calories in {food}", "nutrition facts for {food}"),
        (("calories", "calories"),),
        "{food} has {calories} calories per serving",
    ),
    ToolSpec(
        "search_movies",
        "Search movies by genre.",
        (_req("genre", "movie_genre"), _opt("year", "year", "released in {year}")),
        ("find {genre} movies", "recommend some {genre} films"),
        ("{genre} movies to watch", "a good {genre} film"),
        (("found", "count"), ("top_rating", "rating")),
        "I found {found} {genre} movies, the best rated {top_rating}",
    ),
    ToolSpec(
        "get_movie_details",
        "Get details about a movie.",
        (_req("title", "movie"),),
        ("get details about the movie {title}", "tell me about the film {title}"),
        ("details about {title}",),
        (("release_year", "year"), ("rating", "rating")),
        "{title} came out in {release_year} and is rated {rating}",
    ),
    ToolSpec(
        "search_books",
        "Search books by author.",
        (_req("author", "author"), _opt("topic", "topic", "about {topic}")),
        ("find books by {author}", "list some books written by {author}"),
        ("books by {author}",),
        (("found", "count"),),
        "{author} has {found} books in the catalog",
    ),
    ToolSpec(
        "play_music",
        "Play music of a genre.",
        (_req("genre", "music_genre"), _opt("shuffle", "bool", "on shuffle", "in order")),
        ("play some {genre}", "put on {genre} music"),
        ("some {genre} music",),
        (("tracks_queued", "count"),),
        "{tracks_queued} {genre} tracks are now playing",
    ),
    ToolSpec(
        "get_song_lyrics",
        "Get the lyrics of a song.",
        (_req("song", "song"), _req("artist", "artist")),
        ("get the lyrics of {song} by {artist}", "show me the words to {song} by {artist}"),
        ("the lyrics of {song}", "the words of {song} by {artist}"),
        (("lines", "count"),),
        "the lyrics of {song} by {artist} have {lines} lines",
    ),
    ToolSpec(
        "create_playlist",
        "Create a playlist of a genre.",
        (_req("name", "playlist"), _req("genre", "music_genre")),
        (
            "create a {genre} playlist called {name}",
            "make a playlist named {name} with {genre} songs",
        ),
        ("a new playlist called {name}", "a {genre} playlist"),
        (("tracks_added", "count"),),
        "the playlist {name} now has {tracks_added} {genre} songs",
    ),
    ToolSpec(
        "search_podcasts",
        "Search podcasts about a topic.",
        (_req("topic", "topic"), _opt("language", "language", "in {language}")),
        ("find podcasts about {topic}", "recommend a podcast on {topic}"),
        ("podcasts about {topic}",),
        (("found", "count"),),
        "there are {found} podcasts about {topic}",
    ),
    ToolSpec(
        "get_news",
        "Get the latest news about a topic.",
        (_req("topic", "topic"), _opt("language", "language", "in {language}")),
        ("get the latest news about {topic}", "tell me what is new in {topic}"),
        ("news about {topic}", "the latest headlines on {topic}"),
        (("headline", "headline"), ("articles", "count")),
        "the top story on {topic} is {headline}, among {articles} articles",
    ),
    ToolSpec(
        "summarize_article",
        "Summarize a news article from its URL.",
        (_req("url", "url"),),
        ("summarize the article at {url}", "give me a short summary of {url}"),
        ("a summary of {url}",),
        (("headline", "headline"), ("reading_minutes", "minutes")),
        "the article says {headline} and takes {reading_minutes} minutes to read",
    ),
    ToolSpec(
        "send_email",
        "Send an email.",
        (_req("to", "email"), _req("subject", "subject")),
        ("send an email to {to} about {subject}", "email {to} with the subject {subject}"),
        ("an email to {to} about {subject}",),
        (("queued", "count"),),
        "the email about {subject} to {to} was sent",
    ),
    ToolSpec(
        "create_calendar_event",
        "Create a calendar event.",
        (_req("title", "event_title"), _req("date", "date"), _req("time", "time")),
        ("schedule {title} on {date} at {time}", "add {title} to my calendar for {date} at {time}"),
        ("a calendar entry for {title} on {date}", "{title} on my calendar"),
        (("attendees", "count"),),
        "{title} is on your calendar for {date} at {time}",
    ),
    ToolSpec(
        "set_reminder",
        "Set a reminder at a time.",
        (_req("message", "reminder"), _req("time", "time")),
        ("remind me to {message} at {time}", "set a reminder at {time} to {message}"),
        ("a reminder to {message} at {time}",),
        (("reminders_today", "count"),),
        "I will remind you to {message} at {time}",
    ),
    ToolSpec(
        "track_package",
        "Track a package by tracking number.",
        (_req("tracking_number", "tracking"),),
        ("track the package {tracking_number}", "tell me where my parcel {tracking_number} is"),
        ("the status of package {tracking_number}",),
        (("status", "status"),),
        "package {tracking_number} is {status}",
    ),
    ToolSpec(
        "check_availability",
        "Check whether a product is in stock at a store.",
        (_req("product", "product"), _req("store", "store")),
        (
            "check if the {store} store has a {product}",
            "see whether {product} is in stock at {store}",
        ),
        ("whether {store} has a {product}", "stock of the {product}"),
        (("availability", "availability"),),
        "the {product} is {availability} at {store}",
    ),
    ToolSpec(
        "compare_prices",
        "Compare prices of a product across shops.",
        (_req("product", "product"),),
        ("compare prices for a {product}", "find the cheapest {product}"),
        ("the best price for a {product}",),
        (("lowest_price", "price"), ("shops", "count")),
        "the cheapest {product} is {lowest_price} across {shops} shops",
    ),
    ToolSpec(
        "search_jobs",
        "Search job openings.",
        (
            _req("job_title", "job_title"),
            _req("city", "city"),
            _opt("remote", "bool", "that can be remote", "on site only"),
        ),
        ("find {job_title} jobs in {city}", "search for openings as a {job_title} in {city}"),
        ("{job_title} openings in {city}", "a {job_title} job"),
        (("openings", "count"),),
        "there are {openings} {job_title} openings in {city}",
    ),
    ToolSpec(
        "find_nearby",
        "Find places of a type in a city.",
        (_req("place_type", "place_type"), _req("city", "city")),
        ("find a {place_type} in {city}", "show me the nearest {place_type} in {city}"),
        ("a {place_type} in {city}",),
        (("found", "count"), ("walk_minutes", "minutes")),
        "the closest {place_type} in {city} is {walk_minutes} minutes away",
    ),
    ToolSpec(
        "get_population",
        "Get the population of a country.",
        (_req("country", "country"),),
        ("tell me the population of {country}", "look up how many people live in {country}"),
        ("the population of {country}",),
        (("population", "population"),),
        "{country} has {population} people",
    ),
    ToolSpec(
        "get_country_info",
        "Get basic facts about a country.",
        (_req("country", "country"),),
        ("give me facts about {country}", "tell me about the country {country}"),
        ("facts about {country}",),
        (("capital", "capital"), ("currency", "currency")),
        "the capital of {country} is {capital} and it uses {currency}",
    ),
    ToolSpec(
        "get_holidays",
        "List public holidays of a country in a year.",
        (_req("country", "country"), _req("year", "holiday_year")),
        (
            "list the public holidays in {country} for {year}",
            "tell me the holidays in {country} in {year}",
        ),
        ("public holidays in {country}", "the {year} holidays of {country}"),
        (("holidays", "count"),),
        "{country} has {holidays} public holidays in {year}",
    ),
    ToolSpec(
        "get_sports_scores",
        "Get the latest score of a team.",
        (_req("team", "team"),),
        ("get the latest score for the {team}", "tell me how the {team} did"),
        ("the latest result of the {team}",),
        (("points_for", "score"), ("points_against", "score")),
        "the {team} scored {points_for} against {points_against}",
    ),
    ToolSpec(
        "get_team_schedule",
        "Get a team's games in a month.",
        (_req("team", "team"), _req("month", "month")),
        ("show the {team} schedule for {month}", "tell me when the {team} play in {month}"),
        ("the {team} games in {month}",),
        (("games", "count"),),
        "the {team} play {games} games in {month}",
    ),
    ToolSpec(
        "convert_units",
        "Convert a measurement between units.",
        (
            _req("value", "measure"),
            _req("from_unit", "measure_unit"),
            _req("to_unit", "measure_unit"),
        ),
        (
            "convert {value} {from_unit} to {to_unit}",
            "tell me how many {to_unit} are in {value} {from_unit}",
        ),
        ("{value} {from_unit} in {to_unit}",),
        (("result", "price"),),
        "{value} {from_unit} is {result} {to_unit}",
    ),
    ToolSpec(
        "search_images",
        "Search images matching a query.",
        (_req("query", "image_query"), _opt("limit", "limit", "showing {limit} results")),
        ("find images of a {query}", "search for pictures of a {query}"),
        ("pictures of a {query}",),
        (("found", "count"),),
        "I found {found} images of a {query}",
    ),
    ToolSpec(
        "get_sunrise_sunset",
        "Get sunrise and sunset times for a city on a date.",
        (_req("city", "city"), _req("date", "date")),
        (
            "tell me when the sun rises in {city} on {date}",
            "get sunrise and sunset times for {city} on {date}",
        ),
        ("sunrise and sunset in {city} on {date}",),
        (("sunrise", "time"), ("sunset", "time")),
        "in {city} the sun rises at {sunrise} and sets at {sunset}",
    ),
    ToolSpec(
        "book_table",
        "Reserve a table at a restaurant.",
        (
            _req("restaurant", "restaurant"),
            _req("date", "date"),
            _req("time", "time"),
            _req("guests", "guests"),
        ),
        (
            "book a table at {restaurant} on {date} at {time} for {guests}",
            "reserve {restaurant} for {guests} people on {date} at {time}",
        ),
        ("a table at {restaurant} on {date}", "a reservation for {guests} at {restaurant}"),
        (("confirmation", "count"),),
        "your table for {guests} at {restaurant} is booked for {date} at {time}",
    ),
)


def default_world(seed: int = 0, n_tools: int | None = None) -> World:
    """The bundled world (50 tools); `n_tools` keeps a seeded subset, `seed` fixes tool results."""
    tools = TOOLS
    if n_tools is not None:
        if not 1 <= n_tools <= len(TOOLS):
            raise ValueError(
                f"n_tools={n_tools} is out of range; pass 1..{len(TOOLS)} (or None for all {len(TOOLS)} tools)"
            )
        keep = sorted(random.Random(f"world-subset-{seed}").sample(range(len(TOOLS)), n_tools))
        tools = tuple(TOOLS[i] for i in keep)
    return World(tools=tools, domains=dict(DOMAINS), seed=seed)
